//! One module per command; [`run`] dispatches. Every command that needs the database creates it
//! when missing and applies pending migrations first ([`migrate`]).
//!
//! The operators' commands keep the conventions of `conventions.rs`: JSON in the admin API's
//! shapes, changes audited as `cli:$USER`.

mod conventions;
mod keys;
mod migrate;
mod operator;
mod reports;
mod sellers;
mod serve;
#[cfg(feature = "sandbox")]
pub mod sim;
mod tiers;

use crate::cli::{
    Command, EventsCommand, JobsCommand, KeysCommand, ReportCommand, SellersCommand, TiersCommand,
};
use crate::settings::DbSettings;

use migrate::migrate;

/// Runs one command to its end.
pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        // Boxed: the server's set-up (sandbox seeding included) makes this future large.
        Command::Serve(args) => Box::pin(serve::serve(*args)).await,
        Command::Migrate(db) => {
            migrate(&DbSettings::from_args(&db)?).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Tiers {
            command:
                TiersCommand::Apply {
                    file,
                    dry_run,
                    db,
                    xano,
                },
        } => tiers::apply(&file, dry_run, &db, &xano).await,
        Command::Reconcile { db, xano } => operator::reconcile(&db, &xano).await,
        Command::Purchases { command } => operator::purchases(command).await,
        Command::Instances { name, xano } => operator::instances(name.as_deref(), &xano).await,
        Command::Status { db } => operator::status(&db).await,
        Command::Events {
            command: EventsCommand::Replay { db },
        } => operator::replay_events(&db).await,
        Command::Events {
            command: EventsCommand::Status { db },
        } => operator::events_status(&db).await,
        Command::Jobs {
            command: JobsCommand::List { state, limit, db },
        } => operator::list_jobs(state.as_deref(), limit, &db).await,
        Command::Jobs {
            command: JobsCommand::Requeue { id, db },
        } => operator::requeue_job(id, &db).await,
        Command::Sellers {
            command: SellersCommand::Invite { name, email, db },
        } => operator::invite_seller(&name, &email, &db).await,
        Command::Sellers {
            command: SellersCommand::List { db },
        } => operator::list_sellers(&db).await,
        Command::Sellers {
            command: SellersCommand::Suspend { seller, db },
        } => sellers::suspend(seller, &db).await,
        Command::Sellers {
            command: SellersCommand::Reactivate { seller, db },
        } => sellers::reactivate(seller, &db).await,
        Command::Sellers {
            command: SellersCommand::Keys { command },
        } => sellers::keys(command).await,
        Command::Report {
            command: ReportCommand::Sales(args),
        } => reports::sales(args).await,
        Command::Keys {
            command: KeysCommand::Generate { id },
        } => keys::generate(&id),
        Command::Keys {
            command: KeysCommand::Rotate { db },
        } => keys::rotate(&db).await,
        #[cfg(feature = "sandbox")]
        Command::Sim { which } => sim::run(which).await,
    }
}
