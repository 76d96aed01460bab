//! `demarc what-if ESTATE APP --service-model SM`: which duties move, from whom to whom, which
//! components move, and what that does to the application's coverage and gaps.

use std::path::PathBuf;

use demarc_model::Date;
use demarc_model::assess::{AssessOptions, Coverage};
use demarc_model::resolve::Party;
use demarc_model::whatif::{Change, GapChange, Placement, Side, what_if};

use super::common::{CatalogArg, count, emit, load_estate_for};
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
    /// The provider it would move to (a provider id from the estate). It must offer the
    /// service model when its offerings declare service models.
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
    /// Judge evidence as of this date (YYYY-MM-DD) instead of today.
    #[arg(long, value_name = "DATE")]
    pub today: Option<Date>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    let catalog = args.catalog.load()?;
    let estate = load_estate_for(&args.estate, &catalog, &args.app)?;
    let change = Change {
        service_model: args.service_model.clone(),
        provider: args.provider.clone(),
        component: args.component.clone(),
    };
    let options = AssessOptions::new(args.today.unwrap_or_else(Date::today));
    let result = what_if(&estate, &catalog, &args.app, &change, &options)?;
    let out = match args.format {
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&result)?),
        Format::Table => {
            let mut s = String::new();
            for m in &result.components {
                s.push_str(&format!(
                    "{}: component `{}` ({}) moves from {} to {}\n",
                    result.application,
                    m.component,
                    m.kind,
                    placement(&m.before),
                    placement(&m.after)
                ));
            }
            s.push_str(&format!(
                "{} of {} would move\n",
                result.moved,
                count(result.areas.len(), "area")
            ));
            s.push_str(&format!(
                "coverage: {} → {}\n",
                coverage(&result.coverage_before),
                coverage(&result.coverage_after)
            ));
            gap_lines(&mut s, "gaps opened", &result.gaps_opened);
            gap_lines(&mut s, "gaps closed", &result.gaps_closed);
            let mut t = Table::new(&[
                "area",
                "accountable now (cell)",
                "accountable after (cell)",
                "change",
            ]);
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
            let mut s = crate::render::table::clean_text(&s);
            if !t.is_empty() {
                s.push('\n');
                s.push_str(&t.render(crate::ui::stdout_color()));
            }
            s
        }
    };
    emit(None, &out)?;
    Ok(Outcome::Success)
}

fn placement(p: &Placement) -> String {
    match &p.offering {
        Some(o) => format!("{} (`{}`, offering `{o}`)", p.service_model, p.provider),
        None => format!("{} (`{}`)", p.service_model, p.provider),
    }
}

fn coverage(c: &Coverage) -> String {
    match c.percent {
        Some(p) => format!("{}/{} covered ({p}%)", c.covered, count(c.total, "duty")),
        None => "no customer duties".into(),
    }
}

/// `gaps opened (2):` then one line per duty with its gaps.
fn gap_lines(s: &mut String, title: &str, gaps: &[GapChange]) {
    if gaps.is_empty() {
        s.push_str(&format!("{title}: none\n"));
        return;
    }
    let mut duties: Vec<(&str, &str, Vec<&str>)> = Vec::new();
    for g in gaps {
        match duties
            .iter_mut()
            .find(|(a, c, _)| *a == g.area && *c == g.component)
        {
            Some((_, _, list)) => list.push(g.gap),
            None => duties.push((&g.area, &g.component, vec![g.gap])),
        }
    }
    s.push_str(&format!(
        "{title}: {} in {}\n",
        count(gaps.len(), "gap"),
        count(duties.len(), "duty")
    ));
    for (area, component, list) in duties {
        s.push_str(&format!("  {area} (`{component}`): {}\n", list.join(", ")));
    }
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
