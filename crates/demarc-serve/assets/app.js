// Enhancements only: every page works without this file.
// Ask before revoking a gateway key.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.classList.contains("revoke")) {
    if (!window.confirm("Revoke this key? Gateways refuse it within a second.")) {
      event.preventDefault();
    }
  }
});
