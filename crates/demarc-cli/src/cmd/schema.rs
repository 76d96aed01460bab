//! `demarc schema catalog|estate`: the JSON Schema of a file format.

use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Which format.
    #[arg(value_enum)]
    pub format: Which,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Which {
    Catalog,
    Estate,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let schema = match args.format {
        Which::Catalog => demarc_model::schema::catalog_schema(),
        Which::Estate => demarc_model::schema::estate_schema(),
    };
    super::common::emit(None, &schema)?;
    Ok(Outcome::Success)
}
