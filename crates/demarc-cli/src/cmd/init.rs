//! `demarc init [DIR]`: write a starter estate to begin from.

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::Outcome;

const STARTER: &str = include_str!("../../templates/starter-estate.yaml");

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder to write `estate.yaml` into (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing `estate.yaml`.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create `{}`", args.dir.display()))?;
    let path = args.dir.join("estate.yaml");
    if path.exists() && !args.force {
        bail!(
            "`{}` already exists; pass `--force` to overwrite it",
            path.display()
        );
    }
    std::fs::write(&path, STARTER).with_context(|| format!("cannot write `{}`", path.display()))?;
    eprintln!("wrote {}", path.display());
    eprintln!(
        "next: edit it, then `demarc validate {0}` and `demarc assess {0}`",
        path.display()
    );
    Ok(Outcome::Success)
}
