#!/usr/bin/env python3
"""Side-by-side with detect-secrets (secrets) and Presidio's analyzer (PII), run by bench/guard.sh.

Usage: guard_compare.py CORPUS FIXTURES DEMARC_BIN OUT_DIR

- Speed: each tool scans the same slice of the benchmark corpus in-process (detect-secrets line
  by line, as it scans files; Presidio in 4 KiB documents, as a gateway would call it); demarc
  scans the whole corpus through `demarc scan --jsonl` (one process, one record per 4 KiB
  document, so its figure includes start-up, JSON parsing and output). MB/s are medians of 3 runs.
- Recall: every tool runs over the labelled fixtures (tests/fixtures/pii_secrets.jsonl); a
  detection counts when it overlaps at least half of an expected value. Presidio runs with a
  blank spaCy pipeline (tokenizer only): the official spaCy models are not published on PyPI,
  so its NER-based recognisers are off, and its pattern/checksum recognisers (the ones that
  match demarc's kinds) are what is compared. A blank pipeline is faster than a trained one,
  so Presidio's speed here is an upper bound.
"""
import json
import os
import statistics
import subprocess
import sys
import time

corpus_path, fixtures_path, demarc_bin, out_dir = sys.argv[1:5]
SLICE = int(os.environ.get("GUARD_COMPARE_BYTES", str(512 * 1024)))
PRESIDIO_SLICE = int(os.environ.get("GUARD_COMPARE_PRESIDIO_BYTES", str(64 * 1024)))

with open(corpus_path, encoding="utf-8") as f:
    corpus = f.read()
fixtures = [json.loads(l) for l in open(fixtures_path, encoding="utf-8") if l.strip()]

SECRET_KINDS = {"aws_access_key_id", "aws_secret_access_key", "github_token", "github_fine_grained_token", "gitlab_token",
                "slack_token", "slack_webhook", "stripe_key", "openai_api_key", "anthropic_api_key", "google_api_key",
                "huggingface_token", "npm_token", "sendgrid_api_key", "jwt", "private_key", "connection_string_password",
                "generic_secret", "bearer_token", "url_credentials", "azure_storage_key", "pypi_token"}


def docs(text, size):
    return [text[i:i + size] for i in range(0, len(text), size)]


def median_rate(fn, nbytes, runs=3):
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        rates.append(nbytes / (time.perf_counter() - t) / 1e6)
    return statistics.median(rates)


def overlaps(text, spans, value):
    start = text.find(value)
    if start < 0:
        return False
    end = start + len(value)
    return any(min(e, end) - max(s, start) >= len(value) / 2 for s, e in spans)


def recall(found_spans, kinds_wanted):
    """found_spans(text) -> list of (start, end); recall over expectations of kinds_wanted."""
    per_kind = {}
    for r in fixtures:
        spans = None
        for e in r["expect"]:
            if e["kind"] not in kinds_wanted:
                continue
            if spans is None:
                spans = found_spans(r["text"])
            hit = overlaps(r["text"], spans, e["value"])
            tp, n = per_kind.get(e["kind"], (0, 0))
            per_kind[e["kind"]] = (tp + hit, n + 1)
    return per_kind


results = {"slice_bytes": SLICE, "presidio_slice_bytes": PRESIDIO_SLICE}
slice_text = corpus[:SLICE]
pii_kinds = {e["kind"] for r in fixtures for e in r["expect"]} - SECRET_KINDS

# ---- demarc (CLI, one process, JSONL of 4 KiB documents)
def demarc_jsonl(texts, path):
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"id": i, "text": t}) + "\n")

# demarc gets the whole corpus: on a small slice its figure would be mostly process start-up.
jsonl = os.path.join(out_dir, "corpus.jsonl")
demarc_jsonl(docs(corpus, 4096), jsonl)
def run_demarc():
    subprocess.run([demarc_bin, "scan", "--jsonl", jsonl, "--policy", "default"], check=False, stdout=subprocess.DEVNULL)
results["demarc_mb_s"] = median_rate(run_demarc, len(corpus.encode()))

fx = os.path.join(out_dir, "fixtures.jsonl")
demarc_jsonl([r["text"] for r in fixtures], fx)
out = subprocess.run([demarc_bin, "scan", "--jsonl", fx, "--policy", "monitor"], capture_output=True, text=True).stdout
demarc_found = {}
for line in out.splitlines():
    rec = json.loads(line)
    text = fixtures[rec["id"]]["text"]
    # Offsets are UTF-8 byte offsets; convert to character offsets for Python.
    b = text.encode()
    demarc_found[text] = [(len(b[:f["start"]].decode(errors="ignore")), len(b[:f["end"]].decode(errors="ignore"))) for f in rec["findings"]]
results["demarc_recall"] = recall(lambda t: demarc_found.get(t, []), SECRET_KINDS | pii_kinds)

# ---- detect-secrets
try:
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import default_settings

    lines = slice_text.splitlines()
    def run_ds():
        with default_settings():
            for line in lines:
                for _ in scan_line(line):
                    pass
    results["detect_secrets_mb_s"] = median_rate(run_ds, len(slice_text.encode()))

    def ds_spans(text):
        spans = []
        with default_settings():
            for line_start, line in _lines_with_offsets(text):
                for s in scan_line(line):
                    v = s.secret_value or ""
                    i = line.find(v) if v else -1
                    if i >= 0:
                        spans.append((line_start + i, line_start + i + len(v)))
        return spans

    def _lines_with_offsets(text):
        at = 0
        for line in text.split("\n"):
            yield at, line
            at += len(line) + 1
    results["detect_secrets_recall"] = recall(ds_spans, SECRET_KINDS)
except Exception as e:  # noqa: BLE001 - report whatever stopped the tool
    results["detect_secrets_error"] = repr(e)

# ---- Presidio (blank spaCy pipelines)
try:
    import spacy
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    models = []
    for lang in ["en", "es", "it"]:
        path = os.path.join(out_dir, f"spacy-blank-{lang}")
        if not os.path.exists(path):
            spacy.blank(lang).to_disk(path)
        models.append({"lang_code": lang, "model_name": path})
    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": models})
    engine = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en", "es", "it"])
    pslice = corpus[:PRESIDIO_SLICE]
    pdocs = docs(pslice, 4096)
    def run_presidio():
        for d in pdocs:
            engine.analyze(text=d, language="en")
    results["presidio_mb_s"] = median_rate(run_presidio, len(pslice.encode()))
    lat = []
    for d in pdocs[:16]:
        t = time.perf_counter()
        engine.analyze(text=d, language="en")
        lat.append((time.perf_counter() - t) * 1e3)
    results["presidio_4k_median_ms"] = statistics.median(lat)

    def presidio_spans(text):
        spans = []
        for lang in ["en", "es", "it"]:
            spans += [(r.start, r.end) for r in engine.analyze(text=text, language=lang)]
        return spans
    results["presidio_recall"] = recall(presidio_spans, pii_kinds)
except Exception as e:  # noqa: BLE001
    results["presidio_error"] = repr(e)

json.dump(results, open(os.path.join(out_dir, "compare.json"), "w"), indent=1)

def fmt_recall(d):
    tp = sum(v[0] for v in d.values())
    n = sum(v[1] for v in d.values())
    return f"{tp}/{n} = {tp / n:.2f}" if n else "n/a"

print(f"| tool | MB/s (same corpus) | demarc speed ratio | recall on own fixtures (kinds it covers in our set) |")
print("| --- | --- | --- | --- |")
d = results["demarc_mb_s"]
dr = results["demarc_recall"]
print(f"| demarc scan --jsonl (default policy, all detectors) | {d:.1f} | 1x | secrets {fmt_recall({k: v for k, v in dr.items() if k in SECRET_KINDS})}, PII {fmt_recall({k: v for k, v in dr.items() if k not in SECRET_KINDS})} |")
if "detect_secrets_mb_s" in results:
    r = results["detect_secrets_mb_s"]
    print(f"| detect-secrets 1.5.0 (scan_line, default plugins) | {r:.2f} | {d / r:.0f}x | secrets {fmt_recall(results['detect_secrets_recall'])} |")
else:
    print(f"| detect-secrets | failed: {results.get('detect_secrets_error')} | | |")
if "presidio_mb_s" in results:
    r = results["presidio_mb_s"]
    print(f"| presidio-analyzer 2.2.366 (blank spaCy, 4 KiB docs; median {results['presidio_4k_median_ms']:.1f} ms per doc) | {r:.3f} | {d / r:.0f}x | PII {fmt_recall(results['presidio_recall'])} |")
else:
    print(f"| presidio-analyzer | failed: {results.get('presidio_error')} | | |")
print()
print("Per-kind recall (tp/n): demarc", {k: f"{a}/{b}" for k, (a, b) in sorted(dr.items())})
if "detect_secrets_recall" in results:
    print("detect-secrets", {k: f"{a}/{b}" for k, (a, b) in sorted(results["detect_secrets_recall"].items())})
if "presidio_recall" in results:
    print("presidio", {k: f"{a}/{b}" for k, (a, b) in sorted(results["presidio_recall"].items())})
