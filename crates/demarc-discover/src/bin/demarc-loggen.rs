//! `demarc-loggen`: write a reproducible synthetic log with known ground truth.
//!
//! demarc-loggen FORMAT SIZE [--seed N] [--users N] [--genai PER_MILLE] [--truth FILE] > LOG
//! FORMAT: zeek-ssl, zeek-http, zeek-dns, squid, route53. SIZE: bytes, with k/M/G suffixes.
//! demarc-loggen domains   prints every domain of the built-in catalog, one a line (for
//! `rg -F -f` comparisons in the benchmark).

use std::process::ExitCode;

use demarc_discover::Catalog;
use demarc_discover::loggen::{GenFormat, GenOptions, generate};

fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

fn run(args: &[String]) -> Result<(), String> {
    if args.first().map(String::as_str) == Some("domains") {
        let catalog = Catalog::builtin().map_err(|e| e.to_string())?;
        println!("{}", catalog.domains().join("\n"));
        return Ok(());
    }
    let usage = "usage: demarc-loggen FORMAT SIZE [--seed N] [--users N] [--genai PER_MILLE] [--truth FILE]";
    let format = args
        .first()
        .and_then(|f| GenFormat::from_name(f))
        .ok_or(format!(
            "{usage}\nformats: zeek-ssl, zeek-http, zeek-dns, squid, route53"
        ))?;
    let size = args.get(1).and_then(|s| parse_size(s)).ok_or(usage)?;
    let mut options = GenOptions {
        format,
        size,
        ..GenOptions::default()
    };
    let mut truth_file = None;
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or(format!("`{flag}` needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("`{value}` is not a number"))
        };
        match flag.as_str() {
            "--seed" => options.seed = number()?,
            "--users" => options.users = u32::try_from(number()?).map_err(|_| "too many users")?,
            "--genai" => {
                options.genai_per_mille = u32::try_from(number()?.min(1000)).unwrap_or(1000)
            }
            "--truth" => truth_file = Some(value.clone()),
            other => return Err(format!("unknown option `{other}`\n{usage}")),
        }
    }
    let catalog = Catalog::builtin().map_err(|e| e.to_string())?;
    let stdout = std::io::stdout();
    let truth = generate(&catalog, &options, &mut stdout.lock())
        .map_err(|e| format!("write error: {e}"))?;
    if let Some(path) = truth_file {
        let json = serde_json::to_string_pretty(&truth).map_err(|e| e.to_string())?;
        std::fs::write(&path, json).map_err(|e| format!("`{path}`: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
