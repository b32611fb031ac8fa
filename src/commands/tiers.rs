//! `market tiers apply FILE [--dry-run]`: catalog as code (`market_core::tiers_file`).

use std::path::Path;

use market_core::tiers_file::{self, TiersFile};

use super::conventions::{connect, operator};
use crate::config::{DbArgs, XanoArgs};
use crate::settings::required_xano;

pub async fn apply(file: &Path, dry_run: bool, db: &DbArgs, xano: &XanoArgs) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let tiers = TiersFile::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let pool = connect(db).await?;
    let client = required_xano(xano)?;
    let diff = tiers_file::apply(&pool, &client, &tiers, dry_run, &operator()).await?;
    print!("{diff}");
    match (dry_run, diff.is_empty()) {
        (_, true) => println!("no changes"),
        (true, false) => println!("dry run: nothing was changed"),
        (false, false) => println!("applied"),
    }
    Ok(())
}
