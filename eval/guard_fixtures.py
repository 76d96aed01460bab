#!/usr/bin/env python3
"""Build the labelled PII and secrets fixture set for the guard evaluation.

Writes crates/demarc-guard/tests/fixtures/pii_secrets.jsonl: one JSON object per line,
{"text": ..., "expect": [{"kind": ..., "value": ...}]}. Valid values are computed with the real
checksums; look-alikes break exactly one rule (checksum, range, length) and are expected to be
ignored. Every credential is fake: random characters in the vendor's published layout.
Deterministic (fixed seed)."""
import json, random, string, sys, os

rng = random.Random(20261126)
OUT = os.path.join(os.path.dirname(__file__), "..", "crates", "demarc-guard", "tests", "fixtures", "pii_secrets.jsonl")

def digits(n): return "".join(rng.choice(string.digits) for _ in range(n))
def alnum(n, alphabet=string.ascii_letters + string.digits): return "".join(rng.choice(alphabet) for _ in range(n))

def luhn_complete(prefix, length):
    body = prefix + digits(length - len(prefix) - 1)
    for d in "0123456789":
        if luhn_ok(body + d): return body + d
def luhn_ok(s):
    total = 0
    for i, ch in enumerate(reversed(s)):
        v = int(ch)
        if i % 2 == 1:
            v *= 2
            if v > 9: v -= 9
        total += v
    return total % 10 == 0
def break_luhn(s):
    last = int(s[-1]); return s[:-1] + str((last + 1) % 10)

def iban(country, bban):
    rearranged = bban + country + "00"
    num = int("".join(str(int(c, 36)) for c in rearranged))
    check = 98 - num % 97
    return f"{country}{check:02d}{bban}"
def group4(s): return " ".join(s[i:i+4] for i in range(0, len(s), 4))

def nhs():
    while True:
        d = digits(9)
        total = sum(int(x) * (10 - i) for i, x in enumerate(d))
        c = 11 - total % 11
        if c == 11: c = 0
        if c != 10: return d + str(c)

def steuer_id():
    while True:
        d = [rng.choice("123456789")] + [rng.choice(string.digits) for _ in range(9)]
        counts = {x: d.count(x) for x in set(d)}
        if sum(1 for v in counts.values() if v >= 2) != 1 or max(counts.values()) > 3: continue
        product = 10
        for x in d:
            s = (int(x) + product) % 10
            if s == 0: s = 10
            product = (s * 2) % 11
        return "".join(d) + str((11 - product) % 10)

DNI = "TRWAGMYFPDXBNJZSQVHLCKE"
def dni():
    n = digits(8); return n + DNI[int(n) % 23]
def nie():
    lead = rng.choice("XYZ"); n = digits(7)
    return lead + n + DNI[int(str("XYZ".index(lead)) + n) % 23]

ODD = [1,0,5,7,9,13,15,17,19,21,2,4,18,20,11,3,6,8,12,14,16,10,22,25,24,23]
def codice_fiscale():
    L = string.ascii_uppercase
    body = "".join(rng.choice(L) for _ in range(6)) + digits(2) + rng.choice("ABCDEHLMPRST") + digits(2) + rng.choice(L) + digits(3)
    total = 0
    for i, ch in enumerate(body):
        v = int(ch) if ch.isdigit() else ord(ch) - 65
        total += ODD[v] if i % 2 == 0 else v
    return body + chr(65 + total % 26)

def nir():
    body = rng.choice("12") + digits(2) + f"{rng.randint(1,12):02d}" + f"{rng.randint(1,95):02d}" + digits(3) + digits(3)
    key = 97 - int(body) % 97
    return body + f"{key:02d}"
def spaced_nir(n): return f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}"

def ssn():
    while True:
        a = rng.randint(1, 899)
        if a == 666: continue
        return f"{a:03d}-{rng.randint(1,99):02d}-{rng.randint(1,9999):04d}"

rows = []
def add(text, *expect):
    rows.append({"text": text, "expect": [{"kind": k, "value": v} for k, v in expect]})

# e-mail
for name in ["maria.rossi", "j.smith+billing", "ops-team", "k_tanaka"]:
    e = f"{name}@{rng.choice(['example.com','mail.example.org','corp.example.co.uk'])}"
    add(f"Please contact {e} about the renewal.", ("email", e))
add("See the logo at assets/icon@2x.png and ping @maria on chat.")
add("Address format is user at example dot com, not an address.")
# phones
for p in ["+44 20 7946 0958", "+1 415-555-0132", "+49 30 901820", "+33 1 44 55 66 77", "+39 06 6982 1234"]:
    add(f"Call me on {p} after 5pm.", ("phone", p))
add("Office: (212) 555-0147, ask for Dana.", ("phone", "(212) 555-0147"))
add("Tel. 030 12345678 (Zentrale)", ("phone", "030 12345678"))
add("Build 2024-11-26 finished in 12.5 s; ticket 4471-22.")
# cards
for prefix, length, fmt in [("4", 16, 4), ("51", 16, 4), ("2221", 16, 4), ("34", 15, 0), ("6011", 16, 4), ("35", 16, 4), ("4", 16, 0)]:
    c = luhn_complete(prefix, length)
    shown = group4(c) if fmt == 4 else c
    add(f"Charge the card {shown} for the deposit.", ("payment_card", shown))
    bad = break_luhn(c)
    add(f"Reference number {group4(bad) if fmt == 4 else bad} (not a card).")
add("Order ids 1234567812345678 and 9999999999999999 are internal.")
# IBAN
for country, bban in [("DE", digits(18)), ("GB", "WEST" + digits(14)), ("FR", digits(10) + alnum(11, string.ascii_uppercase + string.digits) + digits(2)), ("ES", digits(20)), ("IT", "X" + digits(10) + digits(12)), ("NL", "ABNA" + digits(10))]:
    i = iban(country, bban)
    add(f"Please wire the amount to IBAN {group4(i)} by Monday.", ("iban", group4(i)))
    add(f"Compact form {i} is fine too.", ("iban", i))
    bad = i[:2] + f"{(int(i[2:4]) + 1) % 100:02d}" + i[4:]
    add(f"Typo in the transfer: {bad} bounced.")
# SSN
for _ in range(4):
    s = ssn(); add(f"Employee SSN: {s} (payroll).", ("us_ssn", s))
for bad in ["000-12-3456", "666-12-3456", "912-34-5678", "123-00-4567", "123-45-0000"]:
    add(f"Invalid SSN example {bad} from the spec.")
# IPs
add("Blocked 203.0.113.45 and 198.51.100.7 at the firewall.", ("ipv4", "203.0.113.45"), ("ipv4", "198.51.100.7"))
add("Upgrade to version 1.2.3.4.5 and 300.1.2.3 is not an address.")
add("IPv6 peer 2001:db8:85a3::8a2e:370:7334 connected.", ("ipv6", "2001:db8:85a3::8a2e:370:7334"))
add("Rust path std::collections::HashMap at 10:30:00.")
# national ids
for _ in range(3):
    n = nhs(); add(f"NHS number {n[:3]} {n[3:6]} {n[6:]} on the referral.", ("uk_nhs", f"{n[:3]} {n[3:6]} {n[6:]}"))
n = nhs(); bad = n[:9] + str((int(n[9]) + 1) % 10)
add(f"NHS number {bad} (transcription error).")
for _ in range(3):
    t = steuer_id(); add(f"Steuer-ID: {t}", ("de_tax_id", t))
add(f"Steuer-ID: 11111111111 is not valid.")
for _ in range(3):
    d = dni(); add(f"DNI {d} del titular.", ("es_dni", d))
d = dni(); add(f"DNI {d[:8]}{'A' if d[8] != 'A' else 'B'} con letra incorrecta.")
for _ in range(2):
    e = nie(); add(f"NIE {e} para el contrato.", ("es_nie", e))
for _ in range(3):
    c = codice_fiscale(); add(f"Codice fiscale: {c}.", ("it_fiscal_code", c))
c = codice_fiscale(); add(f"Codice fiscale errato: {c[:15]}{'A' if c[15] != 'A' else 'B'}.")
for _ in range(3):
    n = nir(); add(f"Numéro de sécurité sociale : {spaced_nir(n)}", ("fr_nir", spaced_nir(n)))
n = nir(); bad = n[:13] + f"{(int(n[13:]) + 1) % 100:02d}"
add(f"NIR erroné {spaced_nir(bad)}.")

# secrets (all fake)
B32 = string.ascii_uppercase + "234567"
aws = "AKIA" + alnum(16, B32)
add(f"export AWS_ACCESS_KEY_ID={aws}", ("aws_access_key_id", aws))
awss = alnum(40, string.ascii_letters + string.digits + "/+")
add(f"aws_secret_access_key = {awss}", ("aws_secret_access_key", awss))
gh = "ghp_" + alnum(36); add(f"git remote set-url origin https://{gh}@github.com/acme/app.git", ("github_token", gh))
ghf = "github_pat_" + alnum(22) + "_" + alnum(59); add(f"token: {ghf}", ("github_fine_grained_token", ghf))
gl = "glpat-" + alnum(20); add(f"GITLAB_TOKEN={gl}", ("gitlab_token", gl))
sl = "xoxb-" + digits(12) + "-" + digits(12) + "-" + alnum(24); add(f"slack bot token {sl}", ("slack_token", sl))
hook = "hooks.slack.com/services/T" + alnum(8, string.ascii_uppercase + string.digits) + "/B" + alnum(8, string.ascii_uppercase + string.digits) + "/" + alnum(24)
add(f"curl -X POST https://{hook}", ("slack_webhook", hook))
st = "sk_live_" + alnum(24); add(f"STRIPE_SECRET_KEY=\"{st}\"", ("stripe_key", st))
oa = "sk-proj-" + alnum(48, string.ascii_letters + string.digits + "_-"); add(f"OPENAI_API_KEY={oa}", ("openai_api_key", oa))
an = "sk-ant-api03-" + alnum(93, string.ascii_letters + string.digits + "_-") + "AA"; add(f"anthropic key: {an}", ("anthropic_api_key", an))
gk = "AIza" + alnum(35, string.ascii_letters + string.digits + "_-"); add(f"maps key={gk}", ("google_api_key", gk))
hf = "hf_" + alnum(34, string.ascii_letters); add(f"HF_TOKEN={hf}", ("huggingface_token", hf))
npm = "npm_" + alnum(36); add(f"//registry.npmjs.org/:_authToken={npm}", ("npm_token", npm))
sg = "SG." + alnum(22) + "." + alnum(43); add(f"SENDGRID_API_KEY='{sg}'", ("sendgrid_api_key", sg))
pw = alnum(14, string.ascii_letters + string.digits + "!#%")
add(f"DATABASE_URL=postgres://app:{pw}@db.internal:5432/app", ("connection_string_password", pw))
pw2 = alnum(12)
add(f"mongodb+srv://admin:{pw2}@cluster0.example.net/prod", ("connection_string_password", pw2))
gen = alnum(24, string.ascii_letters + string.digits + "/+")
add(f"client_secret: \"{gen}\"", ("generic_secret", gen))
gen2 = alnum(20)
add(f"DB_PASSWORD={gen2}", ("generic_secret", gen2))
body = "\n".join(alnum(64, string.ascii_letters + string.digits + "+/") for _ in range(4))
key = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----"
add(f"id_ed25519:\n{key}\n", ("private_key", key))
import base64
jwt = ".".join(base64.urlsafe_b64encode(json.dumps(x).encode()).decode().rstrip("=") for x in [{"alg":"HS256","typ":"JWT"},{"sub":"user-"+digits(6),"exp":1900000000}]) + "." + alnum(43, string.ascii_letters + string.digits + "_-")
add(f"Authorization: Bearer {jwt}", ("jwt", jwt))
# look-alikes that are not secrets
add("password: ${DB_PASSWORD}")
add("api_key = os.environ['API_KEY']")
add("The token bucket algorithm limits requests.")
add("Set password to something long; changeme is not acceptable.")
add("sk-learn is how some people abbreviate scikit-learn.")
add("AKIA is the prefix AWS uses for access key ids.")
add("ghp_ tokens are classic GitHub personal access tokens.")
add("secret = 'aaaaaaaaaaaaaaaaaaaa'")
add("-----BEGIN CERTIFICATE-----\nMIIB" + alnum(40) + "\n-----END CERTIFICATE-----")

with open(OUT, "w") as f:
    for r in rows:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
print(f"wrote {len(rows)} records to {OUT}", file=sys.stderr)
