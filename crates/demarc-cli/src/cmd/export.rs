//! `demarc export oscal-catalog|oscal|cyclonedx`: a catalog or an estate as OSCAL or CycloneDX
//! ML-BOM documents (docs/interchange.md). Documents go to stdout or `--out`/`--out-dir`.

use std::path::PathBuf;

use anyhow::{Context, bail};
use demarc_interchange::cyclonedx::{self, SpecVersion};
use demarc_interchange::oscal::{catalog, export::CATALOG_FILE, export::EstateExport};
use demarc_model::Date;
use demarc_model::assess::{AssessOptions, Assessment, assess};

use super::common::{CatalogArg, check_estate, emit_json, read_bounded};
use crate::Outcome;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(clap::Subcommand, Debug)]
enum What {
    /// A responsibility catalog as an OSCAL catalog: areas as controls grouped by layer, one
    /// parameter per cell, a link to the source.
    OscalCatalog(CatalogArgs),
    /// An estate as OSCAL: component definition (per provider offering), system security plan
    /// (export, inherited, satisfied per area) and assessment results.
    Oscal(OscalArgs),
    /// The estate's model components as a CycloneDX ML-BOM (model cards, datasets, base models).
    Cyclonedx(CycloneDxArgs),
}

#[derive(clap::Args, Debug)]
struct CatalogArgs {
    #[command(flatten)]
    catalog: CatalogArg,
    /// Write the document to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Document {
    Catalog,
    ComponentDefinition,
    Ssp,
    AssessmentResults,
}

#[derive(clap::Args, Debug)]
struct OscalArgs {
    /// The estate file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    estate: PathBuf,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Write every document into this folder: catalog.json, component-definition.json,
    /// ssp.json, assessment-results.json.
    #[arg(long, value_name = "DIR", conflicts_with = "document")]
    out_dir: Option<PathBuf>,
    /// The one document to write to stdout (without `--out-dir`).
    #[arg(long, value_enum, default_value_t = Document::Ssp)]
    document: Document,
    /// The documents' date (`last-modified`; the assessment date when no run is recorded),
    /// YYYY-MM-DD. Default: today. The same estate and date give byte-identical documents.
    #[arg(long, value_name = "DATE")]
    date: Option<Date>,
    /// Assessment results from the latest run of this estate recorded in the store (`demarc
    /// assess --record`), with the store's observations; without it, an assessment of the
    /// estate alone on `--date`.
    #[arg(
        long = "db",
        value_name = "URL",
        env = "DEMARC_DB",
        hide_env_values = true
    )]
    db: Option<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Spec {
    #[value(name = "1.5")]
    V1_5,
    #[value(name = "1.6")]
    V1_6,
    #[value(name = "1.7")]
    V1_7,
}

#[derive(clap::Args, Debug)]
struct CycloneDxArgs {
    /// The estate file (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    estate: PathBuf,
    #[command(flatten)]
    catalog: CatalogArg,
    /// Only this application's models.
    #[arg(long, value_name = "ID")]
    app: Option<String>,
    /// CycloneDX spec version.
    #[arg(long, value_enum, default_value_t = Spec::V1_6)]
    spec: Spec,
    /// The BOM's timestamp (YYYY-MM-DD). Default: today.
    #[arg(long, value_name = "DATE")]
    date: Option<Date>,
    /// Write the BOM to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Outcome> {
    match args.what {
        What::OscalCatalog(a) => {
            let c = a.catalog.load()?;
            emit_json(a.out.as_ref(), &catalog::catalog(&c))?;
        }
        What::Oscal(a) => oscal(a)?,
        What::Cyclonedx(a) => {
            let c = a.catalog.load()?;
            let bytes = read_bounded(&a.estate)?;
            let estate = check_estate(&a.estate, &bytes, &c)?;
            let spec = match a.spec {
                Spec::V1_5 => SpecVersion::V1_5,
                Spec::V1_6 => SpecVersion::V1_6,
                Spec::V1_7 => SpecVersion::V1_7,
            };
            let date = a.date.unwrap_or_else(Date::today);
            let Some(bom) = cyclonedx::export(&estate, a.app.as_deref(), spec, date) else {
                let ids: Vec<&str> = estate
                    .applications()
                    .iter()
                    .map(|x| x.id.as_str())
                    .collect();
                bail!(
                    "no application `{}` in `{}`; {}",
                    a.app.as_deref().unwrap_or_default(),
                    a.estate.display(),
                    demarc_model::diag::did_you_mean(
                        a.app.as_deref().unwrap_or_default(),
                        ids.iter().copied()
                    )
                );
            };
            emit_json(a.out.as_ref(), &bom)?;
        }
    }
    Ok(Outcome::Success)
}

fn oscal(a: OscalArgs) -> anyhow::Result<()> {
    let c = a.catalog.load()?;
    let bytes = read_bounded(&a.estate)?;
    let estate = check_estate(&a.estate, &bytes, &c)?;
    let date = a.date.unwrap_or_else(Date::today);
    let x = EstateExport::new(&estate, &c, date);
    let results = || -> anyhow::Result<_> {
        let (report, run) = assessment(&a, &bytes, &estate, &c, date)?;
        let doc = x.assessment_results(&report, run);
        std::mem::forget(report);
        Ok(doc)
    };
    let done = match &a.out_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            let path = |f: &str| Some(dir.join(f));
            // The SSP and the assessment results are the large documents (hundreds of MB for
            // 10,000 applications): each is built and written on a thread of its own.
            std::thread::scope(|s| -> anyhow::Result<()> {
                let ssp = s.spawn(|| write_large(path("ssp.json").as_ref(), x.ssp()));
                let ar =
                    s.spawn(|| write_large(path("assessment-results.json").as_ref(), results()?));
                emit_json(path(CATALOG_FILE).as_ref(), &catalog::catalog(&c))?;
                emit_json(
                    path("component-definition.json").as_ref(),
                    &x.component_definition(),
                )?;
                ssp.join()
                    .map_err(|_| anyhow::anyhow!("writing the SSP failed"))??;
                ar.join()
                    .map_err(|_| anyhow::anyhow!("writing the assessment results failed"))??;
                Ok(())
            })
        }
        None => match a.document {
            Document::Catalog => emit_json(None, &catalog::catalog(&c)),
            Document::ComponentDefinition => emit_json(None, &x.component_definition()),
            Document::Ssp => write_large(None, x.ssp()),
            Document::AssessmentResults => results().and_then(|r| write_large(None, r)),
        },
    };
    // The process ends after this: the estate's memory goes back to the system at once
    // rather than piece by piece (a tenth of the time on a large estate).
    std::mem::forget(estate);
    done
}

/// Write a large document (as `emit_json` does, the same bytes), then leave its memory to
/// the end of the process (see above).
fn write_large<T: serde::Serialize>(out: Option<&PathBuf>, doc: T) -> anyhow::Result<()> {
    use std::io::Write;
    let write = |w: &mut dyn Write| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, w);
        let mut ser = serde_json::Serializer::with_formatter(&mut w, Pretty::default());
        doc.serialize(&mut ser).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()
    };
    let written = match out {
        Some(path) => std::fs::File::create(path)
            .and_then(|mut f| write(&mut f))
            .with_context(|| format!("cannot write `{}`", path.display()))
            .map(|()| eprintln!("wrote {}", path.display())),
        None => match write(&mut std::io::stdout().lock()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(e).context("cannot write to stdout")
            }
            _ => Ok(()),
        },
    };
    std::mem::forget(doc);
    written
}

/// serde_json's pretty printing (two spaces a level), byte for byte, with each line break and
/// its indentation written in one call: a large export is a few hundred megabytes of mostly
/// indentation, and serde_json writes it two bytes at a time.
#[derive(Default)]
struct Pretty {
    indent: usize,
    has_value: bool,
}

impl Pretty {
    fn newline<W: ?Sized + std::io::Write>(&self, w: &mut W) -> std::io::Result<()> {
        const LINE: &[u8] = b"\n                                                                                                                                ";
        let mut width = 1 + 2 * self.indent;
        let mut chunk = LINE;
        while width > 0 {
            let n = width.min(chunk.len());
            w.write_all(&chunk[..n])?;
            width -= n;
            chunk = &LINE[1..];
        }
        Ok(())
    }

    /// `[` or `{`: one level deeper, nothing in it yet.
    fn open<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.indent += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// `]` or `}`, on a line of its own when something came before it.
    fn close<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        bracket: &[u8],
    ) -> std::io::Result<()> {
        self.indent -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        w.write_all(bracket)
    }

    /// An element or a key: a comma after the first, each on its own line.
    fn item<W: ?Sized + std::io::Write>(&self, w: &mut W, first: bool) -> std::io::Result<()> {
        if !first {
            w.write_all(b",")?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for Pretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"[")
    }

    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"]")
    }

    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.open(w, b"{")
    }

    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.close(w, b"}")
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        self.item(w, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }

    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// The assessment the results describe: the latest recorded run of this estate (same file
/// content) when `--db` names a store that has one, re-assessed as of that run's date with the
/// store's observations; else the estate alone on `date`.
fn assessment(
    a: &OscalArgs,
    bytes: &[u8],
    estate: &demarc_model::CheckedEstate,
    catalog: &demarc_model::CheckedCatalog,
    date: Date,
) -> anyhow::Result<(Assessment, Option<(i64, String)>)> {
    let mut options = AssessOptions::new(date);
    options.files = demarc_serve::assessing::check_evidence_files(&a.estate, estate);
    let Some(url) = a.db.as_ref().filter(|u| !u.is_empty()) else {
        return Ok((assess(estate, catalog, &options), None));
    };
    let runtime = super::db::runtime()?;
    let store = runtime.block_on(demarc_store::Store::open(url))?;
    let sha = demarc_store::EstateRecord::from_content("", bytes).content_sha256;
    let found = runtime.block_on(async {
        let mut runs: Vec<i64> = store.history(None).await?.iter().map(|p| p.run).collect();
        runs.sort_unstable();
        runs.dedup();
        for run in runs.into_iter().rev() {
            if let Some(info) = store.run_info(run).await?
                && info.estate_sha256 == sha
            {
                return Ok::<_, demarc_store::StoreError>(Some(info));
            }
        }
        Ok(None)
    })?;
    let run = match found {
        Some(info) => {
            if let Some(d) = info.assessed_on {
                options.today =
                    Date::from_days_since_epoch(i64::from(d.to_julian_day()) - 2_440_588);
            }
            let at = info.at.to_offset(demarc_store::time::UtcOffset::UTC);
            Some((
                info.run,
                format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    at.year(),
                    u8::from(at.month()),
                    at.day(),
                    at.hour(),
                    at.minute(),
                    at.second()
                ),
            ))
        }
        None => {
            eprintln!(
                "no recorded assessment of `{}` in {}: the assessment results are of the estate on {date}",
                a.estate.display(),
                demarc_store::redact(url)
            );
            None
        }
    };
    let since = options.today.add_days(-30);
    let (observed, traffic) =
        super::observed::read_observations(&runtime, &store, super::observed::start_of(since))?;
    options.observed = observed;
    options.traffic = traffic;
    options.observed_since = Some(since);
    runtime.block_on(store.close());
    Ok((assess(estate, catalog, &options), run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_writes_what_serde_json_writes() {
        let mut deep = serde_json::json!("leaf");
        for i in 0..80 {
            deep = serde_json::json!({"k": [deep, i, [], {}], "e": {}, "a": [[1], {"x": null}]});
        }
        for v in [
            serde_json::json!([]),
            serde_json::json!({}),
            serde_json::json!(1),
            deep,
        ] {
            let mut ours = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut ours, Pretty::default());
            serde::Serialize::serialize(&v, &mut ser).unwrap();
            assert_eq!(
                String::from_utf8(ours).unwrap(),
                serde_json::to_string_pretty(&v).unwrap()
            );
        }
    }
}
