//! `demarc serve` over real HTTP on loopback and a real SQLite store (one test also on a real
//! PostgreSQL database shared by two servers): access by role, login and sessions, forgery
//! protection, the API's error shape, pseudonymised users, hostile estates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use demarc_serve::{App, ServeOptions};
use demarc_store::time::OffsetDateTime;
use demarc_store::{ClassifiedFinding, DiscoveryFinding, FindingClass, Role, Store};
use reqwest::StatusCode;
use reqwest::header::{LOCATION, SET_COOKIE};

fn bank_estate() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/bank-estate.yaml")
}

struct Server {
    base: String,
    store: Store,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(estate: Option<PathBuf>, public_read: bool) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("store.db").display());
        let store = Store::open(&url).await.unwrap();
        let base = serve(store.clone(), estate, public_read).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Server {
            base,
            store,
            http,
            _dir: dir,
        }
    }

    async fn token(&self, role: Role) -> String {
        self.store
            .create_serve_token(role, "test")
            .await
            .unwrap()
            .secret
    }

    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.unwrap()
    }

    /// Signs in through the login form; returns the session cookie.
    async fn login(&self, token: &str) -> String {
        let res = self
            .http
            .post(format!("{}/login", self.base))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn page(&self, path: &str, cookie: &str) -> (StatusCode, String) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (res.status(), res.text().await.unwrap())
    }

    async fn post_form(
        &self,
        path: &str,
        cookie: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> (StatusCode, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", cookie)
            .form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        (res.status(), res.text().await.unwrap())
    }
}

async fn serve(store: Store, estate: Option<PathBuf>, public_read: bool) -> String {
    let catalog = demarc_model::CheckedCatalog::builtin("csa-genai-2023")
        .unwrap()
        .unwrap();
    let app = App::new(
        store,
        ServeOptions {
            catalog,
            estate,
            public_read,
            observed_days: 30,
            expiring_days: 30,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(demarc_serve::serve(listener, app, std::future::pending()));
    base
}

/// The anti-forgery value a page's forms carry.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with csrf");
    html[at + 19..].split('"').next().unwrap().to_owned()
}

async fn error_code(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    (status, body["error"]["code"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn every_page_and_endpoint_needs_a_token_except_healthz() {
    let s = Server::start(Some(bank_estate()), false).await;
    let res = s.get("/healthz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    for path in [
        "/api/v1/applications",
        "/api/v1/openapi.json",
        "/api/v1/audit",
    ] {
        let res = s.get(path, None).await;
        assert!(res.headers().contains_key("www-authenticate"));
        assert_eq!(
            error_code(res).await,
            (StatusCode::UNAUTHORIZED, "unauthenticated".into())
        );
    }
    for path in [
        "/",
        "/matrix",
        "/applications/payments-agent",
        "/admin/keys",
    ] {
        let res = s.get(path, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()[LOCATION], "/login");
    }
    // A wrong or revoked token is refused; so is a gateway key.
    let res = s.get("/api/v1/applications", Some("dmt_0000")).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let viewer = s.token(Role::Viewer).await;
    assert_eq!(
        s.get("/api/v1/applications", Some(&viewer)).await.status(),
        StatusCode::OK
    );
    let id = s.store.list_serve_tokens().await.unwrap()[0].id.clone();
    s.store.revoke_serve_token(&id).await.unwrap();
    assert_eq!(
        s.get("/api/v1/applications", Some(&viewer)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Another site cannot sign a browser in.
    let admin = s.token(Role::Admin).await;
    let res = s
        .http
        .post(format!("{}/login", s.base))
        .header("origin", "https://evil.example")
        .form(&[("token", admin.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!res.headers().contains_key(SET_COOKIE));
    let key = s
        .store
        .create_api_key("payments-agent")
        .await
        .unwrap()
        .secret;
    assert_eq!(
        s.get("/api/v1/applications", Some(&key)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn viewers_read_everything_but_admin_and_errors_share_one_shape() {
    let s = Server::start(Some(bank_estate()), false).await;
    let viewer = s.token(Role::Viewer).await;
    for path in [
        "/",
        "/matrix",
        "/applications",
        "/applications/payments-agent",
        "/teams",
        "/discovery",
        "/gateway",
        "/audit",
    ] {
        let res = s.get(path, Some(&viewer)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let csp = res.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(res.headers()["x-frame-options"], "DENY");
    }
    let apps: serde_json::Value = s
        .get("/api/v1/applications", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        apps.as_array().unwrap().len(),
        11,
        "the bank estate's applications"
    );
    // The overview's heat map: one row per application, one cell per catalog area, and the
    // gaps it marks are the API's gaps.
    let overview = s.get("/", Some(&viewer)).await.text().await.unwrap();
    let heat = &overview[overview.find("<table class=\"heat\"").unwrap()..];
    let heat = &heat[..heat.find("</table>").unwrap()];
    assert_eq!(heat.matches("<th scope=\"row\">").count(), 11);
    assert_eq!(heat.matches("<td class=\"h-").count(), 11 * 12);
    let gaps_in_api: usize = apps
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["gaps"].as_u64().unwrap() as usize)
        .sum();
    let gap_cells = heat.matches("<td class=\"h-gap\">").count()
        + heat.matches("<td class=\"h-accepted\">").count();
    assert!(
        gap_cells > 0 && gap_cells <= gaps_in_api,
        "{gap_cells} gap cells, {gaps_in_api} gaps"
    );
    let duty: serde_json::Value = s
        .get(
            "/api/v1/applications/policy-finder/duties/grounding",
            Some(&viewer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(duty["duty"]["area"], "grounding");
    assert!(
        duty["cell"]["source"].as_str().unwrap().len() > 10,
        "{duty}"
    );
    // What-if, as `demarc what-if` computes it: a model API bought as a platform and run
    // on the bank's own infrastructure instead moves duties to the bank.
    let w: serde_json::Value = s
        .get(
            "/api/v1/applications/colleague-assistant/what-if?service_model=iaas&provider=aws",
            Some(&viewer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(w["moved"].as_u64().unwrap() > 0, "{w}");
    let page = s
        .get(
            "/applications/colleague-assistant/what-if?service_model=iaas&provider=aws",
            Some(&viewer),
        )
        .await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("moves"));
    for bad in ["", "?service_model=quantum", "?service_model=iaas"] {
        let res = s
            .get(
                &format!("/api/v1/applications/colleague-assistant/what-if{bad}"),
                Some(&viewer),
            )
            .await;
        assert_eq!(
            error_code(res).await,
            (StatusCode::BAD_REQUEST, "bad_request".into())
        );
    }
    // Evidence, declared and observed; raw links only for auditors.
    let ev: serde_json::Value = s
        .get("/api/v1/evidence?application=complaints-llm", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    let declared = ev["declared"].as_array().unwrap();
    assert!(
        !declared.is_empty()
            && declared
                .iter()
                .all(|e| e["application"] == "complaints-llm")
    );
    assert!(
        declared
            .iter()
            .all(|e| e.get("link").is_none() && e["status"].is_string())
    );
    assert!(ev["observed"].is_array());
    let auditor = s.token(Role::Auditor).await;
    let ev: serde_json::Value = s
        .get(
            "/api/v1/evidence?application=complaints-llm",
            Some(&auditor),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        ev["declared"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["link"].is_string())
    );
    // Admin endpoints and pages refuse viewers.
    assert_eq!(
        error_code(s.get("/api/v1/admin/keys", Some(&viewer)).await).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );
    let res = s.get("/admin/keys", Some(&viewer)).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(res.text().await.unwrap().contains("admin"));
    // Unknown things are 404 in the same shape; bad paging is a 400.
    assert_eq!(
        error_code(s.get("/api/v1/applications/nope", Some(&viewer)).await).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        error_code(s.get("/api/v1/nothing-here", Some(&viewer)).await).await,
        (StatusCode::NOT_FOUND, "not_found".into())
    );
    assert_eq!(
        error_code(s.get("/api/v1/assessments?limit=0", Some(&viewer)).await).await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
    assert_eq!(
        error_code(
            s.get("/api/v1/assessments/diff?from=1", Some(&viewer))
                .await
        )
        .await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
}

#[tokio::test]
async fn without_an_estate_the_estate_pages_say_so_and_the_rest_works() {
    let s = Server::start(None, true).await;
    assert_eq!(
        error_code(s.get("/api/v1/applications", None).await).await,
        (StatusCode::CONFLICT, "no_estate".into())
    );
    for path in ["/discovery", "/gateway", "/audit", "/matrix"] {
        assert_eq!(s.get(path, None).await.status(), StatusCode::OK, "{path}");
    }
    // --public-read reads as a viewer, never as an admin.
    assert_eq!(
        s.get("/api/v1/admin/keys", None).await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_admin_session_creates_and_revokes_keys_with_forgery_checks_and_audit_events() {
    let s = Server::start(Some(bank_estate()), false).await;
    let admin = s.token(Role::Admin).await;
    let cookie = s.login(&admin).await;
    let (status, html) = s.page("/admin/keys", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);
    let form = [("csrf", csrf.as_str()), ("application", "payments-agent")];
    // No anti-forgery value, a wrong one, or another site's origin: refused, nothing made.
    for (form, origin) in [
        (&[("application", "payments-agent")][..], None),
        (
            &[("csrf", "0000"), ("application", "payments-agent")][..],
            None,
        ),
        (&form[..], Some("https://evil.example")),
    ] {
        let (status, _) = s.post_form("/admin/keys", &cookie, form, origin).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    assert!(s.store.list_api_keys(None).await.unwrap().is_empty());
    let (status, html) = s
        .post_form("/admin/keys", &cookie, &form, Some(&s.base))
        .await;
    assert_eq!(status, StatusCode::OK);
    let keys = s.store.list_api_keys(None).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(html.contains("dmk_"), "the new key is shown once");
    let (status, html) = s
        .post_form(
            &format!("/admin/keys/{}/revoke", keys[0].id),
            &cookie,
            &[("csrf", &csrf)],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("revoked"));
    assert!(!s.store.list_api_keys(None).await.unwrap()[0].is_active());
    // Every admin action (and the login) is an audit event on the `serve` chain, which
    // verifies.
    let events = s.store.audit_events("serve", 0, i64::MAX).await.unwrap();
    let actions: Vec<String> = events
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.payload).unwrap()["action"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        ["login", "gateway_key.create", "gateway_key.revoke"]
    );
    assert!(s.store.verify_audit().await.unwrap().is_intact());
    // Recording a run from the overview (seen first, so its history is cached).
    let (_, before) = s.page("/", &cookie).await;
    assert!(!before.contains("run 1 ("));
    let (status, _) = s
        .post_form("/admin/assess", &cookie, &[("csrf", &csrf)], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(s.store.history(None).await.unwrap().len(), 11);
    // The overview's chart shows the new run at once (its cached history was dropped).
    let (_, overview) = s.page("/", &cookie).await;
    assert!(overview.contains("run 1 ("), "the run is on the chart");
    // Logging out ends the session.
    let (status, _) = s
        .post_form("/logout", &cookie, &[("csrf", &csrf)], None)
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let res = s
        .http
        .get(format!("{}/", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_api_creates_keys_with_a_bearer_token_and_refuses_a_session_without_the_header() {
    let s = Server::start(Some(bank_estate()), false).await;
    let admin = s.token(Role::Admin).await;
    let res = s
        .http
        .post(format!("{}/api/v1/admin/keys", s.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"application": "payments-agent"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["secret"].as_str().unwrap().starts_with("dmk_"));
    let res = s
        .http
        .post(format!("{}/api/v1/admin/keys", s.base))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"application": "not-in-the-estate"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
    // From a browser session, a state change needs the X-CSRF-Token header.
    let cookie = s.login(&admin).await;
    let res = s
        .http
        .post(format!("{}/api/v1/assessments", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::FORBIDDEN, "csrf".into())
    );
    let res = s
        .http
        .post(format!("{}/api/v1/assessments", s.base))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let run: serde_json::Value = res.json().await.unwrap();
    let one: serde_json::Value = s
        .get(&format!("/api/v1/assessments/{}", run["run"]), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        one["results"].as_array().unwrap().len() as u64,
        run["duties"].as_u64().unwrap()
    );
    // A body over the limit is refused before it is read.
    let res = s
        .http
        .post(format!("{}/api/v1/admin/keys", s.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body(vec![b' '; demarc_serve::MAX_BODY + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(res).await,
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large".into())
    );
    // Malformed input answers in the same JSON shape, never axum's plain text.
    for (body, content_type) in [
        ("{not json", "application/json"),
        ("{\"app\": 1}", "application/json"),
        ("{\"application\": \"payments-agent\"}", "text/plain"),
    ] {
        let res = s
            .http
            .post(format!("{}/api/v1/admin/keys", s.base))
            .bearer_auth(&admin)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_code(res).await,
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{body} as {content_type}"
        );
    }
    for path in [
        "/api/v1/assessments/abc",
        "/api/v1/assessments?limit=many",
        "/api/v1/assessments/diff?from=1&to=x",
        "/api/v1/gateway/activity?days=-1",
        "/api/v1/discovery/runs/1.5/findings",
    ] {
        assert_eq!(
            error_code(s.get(path, Some(&admin)).await).await,
            (StatusCode::BAD_REQUEST, "bad_request".into()),
            "{path}"
        );
    }
}

#[tokio::test]
async fn user_names_are_pseudonymised_unless_the_token_is_auditor() {
    let s = Server::start(Some(bank_estate()), false).await;
    let at = OffsetDateTime::now_utc();
    let finding = |user: &str| ClassifiedFinding {
        finding: DiscoveryFinding {
            service: "chatgpt".into(),
            user: user.into(),
            requests: 3,
            bytes_sent: 10,
            bytes_received: 20,
            first_seen: at,
            last_seen: at,
        },
        class: FindingClass {
            status: "unsanctioned".into(),
            user_kind: "user".into(),
            ..FindingClass::default()
        },
    };
    let run = s
        .store
        .record_discovery_classified(
            "proxy.log",
            at,
            &[finding("alice@bank.example"), finding("bob@bank.example")],
        )
        .await
        .unwrap();
    let path = format!("/api/v1/discovery/runs/{run}/findings");
    let viewer = s.token(Role::Viewer).await;
    let auditor = s.token(Role::Auditor).await;
    let users = |v: serde_json::Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["user"].as_str().unwrap().to_owned())
            .collect()
    };
    let seen = users(s.get(&path, Some(&viewer)).await.json().await.unwrap());
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|u| u.starts_with("user-") && !u.contains('@')),
        "{seen:?}"
    );
    assert_ne!(seen[0], seen[1]);
    let again = users(s.get(&path, Some(&viewer)).await.json().await.unwrap());
    assert_eq!(seen, again, "a pseudonym is stable");
    let named = users(s.get(&path, Some(&auditor)).await.json().await.unwrap());
    assert!(named.contains(&"alice@bank.example".to_owned()));
    let page = s
        .get("/discovery", Some(&viewer))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("alice@") && page.contains(&seen[0]));
    let page = s
        .get("/discovery", Some(&auditor))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("alice@bank.example"));
    let paged: serde_json::Value = s
        .get(&format!("{path}?limit=1&offset=1"), Some(&auditor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            paged["total"].as_u64(),
            paged["items"].as_array().unwrap().len()
        ),
        (Some(2), 1)
    );
}

#[tokio::test]
async fn hostile_estate_text_is_escaped_and_script_links_are_never_links() {
    let text = std::fs::read_to_string(bank_estate()).unwrap();
    let hostile = text
        .replacen(
            "name: Northwind Bank",
            "name: \"<script>alert(1)</script> Bank\"",
            1,
        )
        .replacen(
            "link: https://grc.northwindbank.example/approvals/MRM-2026-044",
            "link: \"javascript:alert(document.cookie)\"",
            1,
        )
        .replace(
            "Azure OpenAI",
            "Azure \\\"><img src=x onerror=alert(1)> OpenAI",
        );
    let dir = tempfile::tempdir().unwrap();
    let estate = dir.path().join("hostile.yaml");
    std::fs::write(&estate, hostile).unwrap();
    std::fs::create_dir_all(dir.path().join("evidence")).unwrap();
    let s = Server::start(Some(estate), false).await;
    let auditor = s.token(Role::Auditor).await;
    let mut pages = vec![
        "/".to_owned(),
        "/applications".to_owned(),
        "/teams".to_owned(),
    ];
    let apps: serde_json::Value = s
        .get("/api/v1/applications", Some(&auditor))
        .await
        .json()
        .await
        .unwrap();
    for a in apps.as_array().unwrap() {
        pages.push(format!("/applications/{}", a["id"].as_str().unwrap()));
    }
    let mut saw_script_link_as_text = false;
    for path in pages {
        let res = s.get(&path, Some(&auditor)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let html = res.text().await.unwrap();
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(
            !html.to_ascii_lowercase().contains("href=\"javascript:"),
            "{path}"
        );
        saw_script_link_as_text |= html.contains("javascript:alert(document.cookie)");
    }
    assert!(saw_script_link_as_text, "an auditor sees the link, as text");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_they_answer() {
    let s = Server::start(Some(bank_estate()), false).await;
    let admin = s.token(Role::Admin).await;
    let doc: serde_json::Value = s
        .get("/api/v1/openapi.json", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path.contains('{') || path.ends_with("/diff") {
            continue;
        }
        let res = s.get(path, Some(&admin)).await;
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
}

/// Two servers over one PostgreSQL store: a session opened on one is honoured by the other,
/// and revoking its token on one ends it on both.
#[tokio::test]
async fn replicas_share_tokens_and_sessions_through_postgres() {
    use sqlx::Connection;
    let admin_url = std::env::var("DEMARC_TEST_PG")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut b = [0u8; 6];
    getrandom::fill(&mut b).unwrap();
    let name = format!("demarc_serve_{}", hex::encode(b));
    let mut c = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| {
            panic!("this test needs PostgreSQL at {admin_url} (set DEMARC_TEST_PG): {e}")
        });
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let url = match admin_url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{admin_url}"),
    };
    let one = Store::open(&url).await.unwrap();
    let two = Store::open(&url).await.unwrap();
    let base_one = serve(one.clone(), Some(bank_estate()), false).await;
    let base_two = serve(two.clone(), Some(bank_estate()), false).await;
    let created = one
        .create_serve_token(Role::Viewer, "replicas")
        .await
        .unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = http
        .post(format!("{base_one}/login"))
        .form(&[("token", created.secret.as_str())])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let on_two = |cookie: String| {
        let http = http.clone();
        let base = base_two.clone();
        async move {
            http.get(format!("{base}/applications"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(on_two(cookie.clone()).await, StatusCode::OK);
    two.revoke_serve_token(&created.token.id).await.unwrap();
    assert_eq!(on_two(cookie.clone()).await, StatusCode::SEE_OTHER);
    let res = http
        .get(format!("{base_one}/applications"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    one.close().await;
    two.close().await;
    sqlx::raw_sql(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn gateway_activity_counts_requests_blocks_redactions_and_latency_per_day() {
    let s = Server::start(None, false).await;
    let now = OffsetDateTime::now_utc();
    let event = |status: u16, error: Option<&str>, latency: f64, redactions: u32| {
        demarc_store::NewAuditEvent {
            at: now,
            payload: serde_json::json!({
                "application": "chat", "status": status, "error": error,
                "latency_ms": latency, "verdicts": {"redactions": redactions}
            })
            .to_string(),
        }
    };
    s.store
        .append_audit_batch(
            "gw-1",
            &[
                event(200, None, 10.0, 2),
                event(200, None, 30.0, 1),
                event(400, Some("input_blocked"), 5.0, 0),
            ],
        )
        .await
        .unwrap();
    let viewer = s.token(Role::Viewer).await;
    let days: serde_json::Value = s
        .get("/api/v1/gateway/activity?days=7", Some(&viewer))
        .await
        .json()
        .await
        .unwrap();
    let today = &days.as_array().unwrap()[0];
    assert_eq!(today["application"], "chat");
    assert_eq!(
        (
            today["requests"].as_u64(),
            today["served"].as_u64(),
            today["blocked"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(today["redactions"], 3);
    assert_eq!(today["mean_latency_ms"], 15.0);
    let page = s.get("/gateway", Some(&viewer)).await.text().await.unwrap();
    assert!(page.contains("15 ms"), "mean latency on the page");
    assert_eq!(
        error_code(
            s.get("/api/v1/gateway/activity?days=401", Some(&viewer))
                .await
        )
        .await,
        (StatusCode::BAD_REQUEST, "bad_request".into())
    );
}

/// A generated Squid log: lines that can be cut into batches anywhere between them.
fn squid_log(seed: u64) -> Vec<u8> {
    let catalog = demarc_discover::Catalog::builtin().unwrap();
    let options = demarc_discover::loggen::GenOptions {
        format: demarc_discover::loggen::GenFormat::Squid,
        size: 256 << 10,
        seed,
        users: 40,
        genai_per_mille: 200,
    };
    let mut out = Vec::new();
    demarc_discover::loggen::generate(&catalog, &options, &mut out).unwrap();
    out
}

/// Findings added up per service, tenant, status and identity: (requests, use requests).
fn totals(findings: &[ClassifiedFinding]) -> std::collections::BTreeMap<String, (i64, i64)> {
    let mut out = std::collections::BTreeMap::new();
    for f in findings {
        let key = format!(
            "{} {:?} {} {}",
            f.finding.service, f.class.tenant, f.class.status, f.finding.user
        );
        let e: &mut (i64, i64) = out.entry(key).or_default();
        e.0 += f.finding.requests;
        e.1 += f.class.use_requests.unwrap();
    }
    out
}

#[tokio::test]
async fn log_shippers_send_batches_that_are_recorded_once_and_read_nothing() {
    let s = Server::start(Some(bank_estate()), false).await;
    let shipper = s.token(Role::Ingest).await;
    let viewer = s.token(Role::Viewer).await;
    let post = |token: Option<&str>, query: &str, body: Vec<u8>| {
        let mut req = s
            .http
            .post(format!("{}/api/v1/discovery/ingest?{query}", s.base))
            .header("content-type", "text/plain")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t.to_owned());
        }
        req.send()
    };
    // A shipper's token reads nothing and cannot sign in.
    assert_eq!(
        s.get("/api/v1/matrix", Some(&shipper)).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.get("/", Some(&shipper)).await.status(),
        StatusCode::FORBIDDEN
    );
    let login = s
        .http
        .post(format!("{}/login", s.base))
        .form(&[("token", shipper.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::FORBIDDEN);
    // Only ingest (or admin) tokens send, and only with a bearer token.
    let log = squid_log(11);
    let r = post(Some(&viewer), "sensor=proxy", log.clone())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(None, "sensor=proxy", log.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Four batches cut between lines, sent at once (those that come while a run is being
    // recorded share the next one), then the second one again (a shipper's retry).
    let lines: Vec<&[u8]> = log.split_inclusive(|&b| b == b'\n').collect();
    let batches: Vec<Vec<u8>> = lines
        .chunks(lines.len().div_ceil(4))
        .map(|c| c.concat())
        .collect();
    let sent = batches.iter().enumerate().map(|(i, batch)| {
        let query = format!("sensor=proxy&batch={i}");
        let (post, shipper) = (&post, &shipper);
        async move { post(Some(shipper), &query, batch.clone()).await.unwrap() }
    });
    let mut gathered: std::collections::BTreeMap<i64, u64> = Default::default();
    for r in futures_util::future::join_all(sent).await {
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["duplicate"], false, "{v}");
        gathered.insert(v["run"].as_i64().unwrap(), v["batches"].as_u64().unwrap());
    }
    assert_eq!(gathered.values().sum::<u64>(), 4, "{gathered:?}");
    let again = post(
        Some(&shipper),
        "sensor=proxy&batch=1-retry",
        batches[1].clone(),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    let v: serde_json::Value = again.json().await.unwrap();
    assert_eq!(v["duplicate"], true, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("from sensor `proxy`"),
        "{v}"
    );

    // What the runs hold is what one scan of the whole log holds.
    let runs = s.store.discovery_runs().await.unwrap();
    assert_eq!(runs.len(), gathered.len());
    assert!(runs.iter().all(|r| r.sensor.as_deref() == Some("proxy")));
    let mut recorded = Vec::new();
    for r in &runs {
        recorded.extend(s.store.discovery_findings_classified(r.id).await.unwrap());
    }
    let catalog = demarc_discover::Catalog::builtin().unwrap();
    let estate = demarc_model::CheckedEstate::from_bytes(
        "bank-estate.yaml",
        &std::fs::read(bank_estate()).unwrap(),
        &demarc_model::CheckedCatalog::builtin("csa-genai-2023")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let apps = demarc_serve::recording::known_applications(&estate.estate);
    let whole = demarc_serve::recording::scan_batch("whole", log.into(), &catalog, None, None);
    let whole = demarc_serve::recording::report_of(&catalog, &whole, &apps);
    let whole = demarc_serve::recording::findings_of(&whole, OffsetDateTime::now_utc());
    assert_eq!(totals(&recorded), totals(&whole));

    // Unreadable and oversized batches are refused, not recorded as empty runs.
    let binary: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let r = post(Some(&shipper), "sensor=proxy", binary).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post(Some(&shipper), "sensor=proxy", vec![b'a'; (16 << 20) + 1])
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_large");
    let r = post(Some(&shipper), "batch=1", b"x\n".to_vec())
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "sensor is required");
    assert_eq!(
        s.store.discovery_runs().await.unwrap().len(),
        gathered.len()
    );

    // NDJSON from a shipper, with its own field names mapped.
    let ndjson = concat!(
        r#"{"t":"2026-12-01T10:00:00Z","dest":"claude.ai","who":"ann"}"#,
        "\n",
        r#"{"t":"2026-12-01T10:00:05Z","dest":"claude.ai","who":"bob"}"#,
        "\n"
    )
    .as_bytes()
    .to_vec();
    let mapped = "sensor=vector&format=jsonl&map=host%3Ddest%2Cuser%3Dwho%2Ctime%3Dt";
    let r = post(Some(&shipper), mapped, ndjson.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (v["records"].as_u64(), v["findings"].as_u64()),
        (Some(2), Some(2)),
        "{v}"
    );
    let r = post(Some(&shipper), "sensor=vector&format=nope", ndjson)
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}
