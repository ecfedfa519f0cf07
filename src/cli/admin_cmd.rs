//! `tokensmith admin bootstrap`: the first admin client, created once on the database's
//! machine; from then on operators use the admin API (`--admin-listen`) with its credentials.

use clap::Subcommand;

use super::DatabaseArgs;
use crate::domain::{ADMIN_READ, ADMIN_WRITE};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create the first admin client (scopes admin:read admin:write, with OTP) and print its
    /// credentials once; refused when a client already holds admin:write.
    Bootstrap {
        /// A label for people.
        #[arg(long, default_value = "admin")]
        name: String,
        /// Print one JSON object (no QR code).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub(super) async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    match cmd {
        AdminCommand::Bootstrap { name, json, db } => {
            db.local_only("admin bootstrap")?;
            if let Some(path) = crate::store::sqlite_path(&db.database)
                && path.exists()
            {
                let (store, _) = db.open_existing().await?;
                if let Some(c) = store.list_clients().await?.iter().find(|c| c.scopes.contains(ADMIN_WRITE)) {
                    anyhow::bail!(
                        "client {} already holds {ADMIN_WRITE}: bootstrap runs once (create further admin clients \
                         through the admin API, or tokensmith client create --scopes \"{ADMIN_READ} {ADMIN_WRITE}\" --otp)",
                        c.id
                    );
                }
            }
            let scopes = format!("{ADMIN_READ} {ADMIN_WRITE}");
            super::client::create(name, &scopes, true, None, json, &db).await
        }
    }
}
