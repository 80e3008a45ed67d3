//! The example ingester's metric catalog: runs its work on the example data in this process
//! (pushing nothing), then prints its `METRICS.md`, its catalog as JSON, or the Grafana
//! dashboard generated from it; or checks a checked-in catalog for drift.
//!
//! ```text
//! cargo run --example catalog --features serde                          # METRICS.md, then the dashboard
//! cargo run --example catalog --features serde -- markdown > examples/METRICS.md
//! cargo run --example catalog --features serde -- json
//! cargo run --example catalog --features serde -- dashboard > ingester-dashboard.json
//! cargo run --example catalog --features serde -- check examples/METRICS.md   # exit 1 on drift
//! ```

#[path = "support/ingest.rs"]
mod ingest;

use std::path::Path;
use std::process::ExitCode;

use metrics_exporter_pushgateway::{
    Catalog, DashboardOptions, Matcher, PushgatewayBuilder, DEFAULT_ENDPOINT,
};

fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    // The ingester's settings, with pushing off: only the catalog is wanted here.
    let guard = PushgatewayBuilder::new(DEFAULT_ENDPOINT)
        .job("ingester")
        .buckets_for_metric(
            Matcher::Full("ingester_record_duration_seconds".into()),
            &ingest::RECORD_BUCKETS,
        )
        .enabled(false)
        .install()?;
    ingest::describe();
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data");
    for file in ["venues.csv", "events.jsonl"] {
        ingest::ingest(&data.join(file))?;
    }
    metrics::gauge!("ingester_input_files").set(2.0);
    let catalog = guard.catalog();
    let dashboard = || {
        let options = DashboardOptions::new("Ingester")
            .uid("ingester")
            .grouping_label("instance");
        let dashboard = catalog.grafana_dashboard(&options)?;
        Ok::<_, Box<dyn std::error::Error>>(serde_json::to_string_pretty(&dashboard)?)
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {
            print!("{}", catalog.to_markdown());
            println!("\n{}", dashboard()?);
        }
        ["markdown"] => print!("{}", catalog.to_markdown()),
        ["json"] => println!("{}", catalog.to_json()),
        ["dashboard"] => println!("{}", dashboard()?),
        ["check", path] => {
            let text = std::fs::read_to_string(path)?;
            let checked_in = if path.ends_with(".json") {
                Catalog::from_json(&text)?
            } else {
                Catalog::from_markdown(&text)?
            };
            let drift = catalog.diff(&checked_in);
            println!("{drift}");
            if !drift.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
        }
        _ => {
            eprintln!("usage: catalog [markdown | json | dashboard | check FILE]");
            return Ok(ExitCode::from(2));
        }
    }
    Ok(ExitCode::SUCCESS)
}
