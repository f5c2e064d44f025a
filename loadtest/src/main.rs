//! `confab-loadtest`: parse the options, run, print the table, write the
//! JSON and the plot. Everything else is in the library.

use clap::Parser;
use confab_loadtest::{report, Options};

fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(confab_loadtest::run(&options))?;
    print!("{}", report::table(&report));
    if let Some(path) = &options.json {
        report::write_json(&report, path)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &options.plot {
        report::write_plot(&report, path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
