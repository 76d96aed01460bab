//! `demarc what-if ESTATE APP --service-model SM`: which duties move, from whom to whom.

use std::path::PathBuf;

use demarc_model::resolve::Party;
use demarc_model::whatif::{Change, Side, what_if};

use super::common::{CatalogArg, emit, load_estate};
use crate::Outcome;
use crate::render::table::{Cell, Style, Table};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The estate file (YAML or JSON).
    pub estate: PathBuf,
    /// The application's id.
    pub app: String,
    /// The service model the application (or `--component`) would move to.
    #[arg(long, value_name = "SM")]
    pub service_model: String,
    /// The provider it would move to (a provider id from the estate).
    #[arg(long, value_name = "PROVIDER")]
    pub provider: Option<String>,
    /// Change only this component (default: every component of the application).
    #[arg(long, value_name = "ID")]
    pub component: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArg,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// List every area, not only those that move.
    #[arg(long)]
    pub all: bool,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let estate = load_estate(&args.estate, &catalog)?;
    let change = Change {
        service_model: args.service_model.clone(),
        provider: args.provider.clone(),
        component: args.component.clone(),
    };
    let result = what_if(&estate, &catalog, &args.app, &change)?;
    let out = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&result)?),
        Format::Table => {
            let target = match &args.provider {
                Some(p) => format!("{} from {p}", args.service_model),
                None => args.service_model.clone(),
            };
            let mut s = format!(
                "{}: if it moved to {target}, {} of {} areas would move\n\n",
                result.application,
                result.moved,
                result.areas.len()
            );
            let mut t = Table::new(&["area", "now", "after", ""]);
            for a in result.areas.iter().filter(|a| a.moved || args.all) {
                t.row(vec![
                    a.area.clone().into(),
                    describe(&a.before).into(),
                    Cell::styled(
                        describe(&a.after),
                        if a.moved { Style::Yellow } else { Style::Plain },
                    ),
                    if a.moved {
                        Cell::styled("moves", Style::Bold)
                    } else {
                        "".into()
                    },
                ]);
            }
            if !t.is_empty() {
                s.push_str(&t.render(crate::ui::stdout_color()));
            }
            s
        }
    };
    emit(None, &out)?;
    Ok(Outcome::Success)
}

fn describe(side: &Side) -> String {
    match (&side.accountable, side.owner) {
        (Some(p), Some(owner)) => {
            let mut s = format!("{} ({owner})", p.label());
            if !side.also_responsible.is_empty() {
                let others: Vec<String> = side.also_responsible.iter().map(Party::label).collect();
                s.push_str(&format!(" + {}", others.join(", ")));
            }
            s
        }
        _ => "n/a".into(),
    }
}
