//! `curio crds`: print the CustomResourceDefinitions, or write or check the checked-in files.

use std::{path::PathBuf, process::ExitCode};

use curio::crd::generate;

#[derive(clap::Args)]
pub struct CrdsArgs {
    /// Compare DIR's files with the generated ones; exit 1 if any differ.
    #[arg(long, conflicts_with = "write")]
    check: bool,
    /// Write the generated files into DIR.
    #[arg(long)]
    write: bool,
    /// Folders for --check and --write (repeatable): the repository's and the chart's.
    #[arg(long, default_values = ["crds", "charts/curio/crds"], value_name = "DIR")]
    dir: Vec<PathBuf>,
}

pub fn run(args: &CrdsArgs) -> anyhow::Result<ExitCode> {
    let (check, write, dirs) = (args.check, args.write, &args.dir);
    if check {
        let mut stale = Vec::new();
        for dir in dirs {
            let found = generate::stale_files(dir)?;
            if found.is_empty() {
                println!("{} is up to date", dir.display());
            }
            stale.extend(found);
        }
        if stale.is_empty() {
            return Ok(ExitCode::SUCCESS);
        }
        for path in stale {
            eprintln!("{} differs from the Rust types", path.display());
        }
        eprintln!("run `cargo run -- crds --write` and commit the result");
        return Ok(ExitCode::FAILURE);
    }
    if write {
        for dir in dirs {
            for path in generate::write_all(dir)? {
                println!("wrote {}", path.display());
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let docs: Vec<String> = generate::manifests()?.into_iter().map(|m| m.yaml).collect();
    print!("{}", docs.join("---\n"));
    Ok(ExitCode::SUCCESS)
}
