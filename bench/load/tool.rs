//! Helpers for `bench/run`: seeding a large database, and making inputs that wrk replays.
//!
//! This is benchmark tooling, not part of the service: `seed` writes rows with plain SQL
//! (and `synchronous = OFF`) because a million inserts through the service would measure
//! nothing but fsync.
//!
//! ```text
//! tool keypair DIR                          Ed25519 pkcs8 (DIR/key.der) and SPKI PEM (DIR/key.pem)
//! tool assertions DER CLIENT AUD N OUT      N single-use EdDSA assertions, one per line
//! tool short-ids KEYFILE PARENT N OUT       N valid short-term token ids minted from PARENT
//! tool seed DB_URL CLIENTS TOKENS EXPIRED   bulk rows: clients, live tokens, long-expired tokens
//!                                           (CLIENTS = 0: for the clients already there)
//! ```

use std::io::Write;

use anyhow::{Context, Result, bail};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use tokensmith::crypto::Keyring;
use tokensmith::domain::{LongTokenId, ShortTokenId};

fn arg(args: &[String], i: usize, what: &str) -> Result<String> {
    args.get(i).cloned().with_context(|| format!("missing argument: {what}"))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("keypair") => {
            let dir = std::path::PathBuf::from(arg(&args, 1, "DIR")?);
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("keygen"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("key"))?;
            let mut spki = hex_decode("302a300506032b6570032100");
            spki.extend_from_slice(pair.public_key().as_ref());
            std::fs::write(dir.join("key.der"), pkcs8.as_ref())?;
            std::fs::write(
                dir.join("key.pem"),
                format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", STANDARD.encode(spki)),
            )?;
        }
        Some("assertions") => {
            let der = std::fs::read(arg(&args, 1, "DER")?)?;
            let client = arg(&args, 2, "CLIENT")?;
            let aud = arg(&args, 3, "AUD")?;
            let n: usize = arg(&args, 4, "N")?.parse()?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(arg(&args, 5, "OUT")?)?);
            let key = jsonwebtoken::EncodingKey::from_ed_der(&der);
            let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
            let t = now();
            for i in 0..n {
                let claims = serde_json::json!({
                    "iss": client, "sub": client, "aud": aud, "iat": t, "exp": t + 290,
                    "jti": format!("bench-{t}-{i}"),
                });
                writeln!(out, "{}", jsonwebtoken::encode(&header, &claims, &key)?)?;
            }
        }
        Some("short-ids") => {
            let keyring = Keyring::load_or_create(std::path::Path::new(&arg(&args, 1, "KEYFILE")?), None)?;
            let parent = LongTokenId(uuid::Uuid::parse_str(&arg(&args, 2, "PARENT")?)?);
            let n: usize = arg(&args, 3, "N")?.parse()?;
            let mut out = std::io::BufWriter::new(std::fs::File::create(arg(&args, 4, "OUT")?)?);
            let exp = now() + 900;
            for _ in 0..n {
                writeln!(out, "{}", ShortTokenId::generate(&keyring, parent, exp))?;
            }
        }
        Some("seed") => seed(&args).await?,
        _ => bail!("usage: tool keypair|assertions|short-ids|seed ... (see bench/tool.rs)"),
    }
    Ok(())
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).filter_map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

async fn seed(args: &[String]) -> Result<()> {
    use sqlx::ConnectOptions;
    use std::str::FromStr;
    let url = arg(args, 1, "DB_URL")?;
    let clients: usize = arg(args, 2, "CLIENTS")?.parse()?;
    let tokens: usize = arg(args, 3, "TOKENS")?.parse()?;
    let expired: usize = arg(args, 4, "EXPIRED")?.parse()?;
    let mut conn = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(30))
        .connect()
        .await?;
    let t = now();
    // CLIENTS = 0: add tokens to the clients already there (the server may be running).
    let mut ids: Vec<String> = if clients == 0 {
        sqlx::query_scalar("SELECT id FROM clients").fetch_all(&mut conn).await?
    } else {
        Vec::with_capacity(clients)
    };
    let mut tx = sqlx::Connection::begin(&mut conn).await?;
    for i in 0..clients {
        let id = format!("cli_seed{i:014}");
        let mut hash = [0u8; 32];
        aws_lc_rs::rand::fill(&mut hash).map_err(|_| anyhow::anyhow!("rng"))?;
        sqlx::query(
            "INSERT INTO clients (id, name, scopes, secret_hash, created_at) VALUES (?, ?, 'read write', ?, ?)",
        )
        .bind(&id)
        .bind(format!("seed {i}"))
        .bind(&hash[..])
        .bind(t)
        .execute(&mut *tx)
        .await?;
        ids.push(id);
    }
    tx.commit().await?;
    let total = tokens + expired;
    let mut done = 0;
    while done < total {
        let mut tx = sqlx::Connection::begin(&mut conn).await?;
        for i in done..(done + 20_000).min(total) {
            let mut hash = [0u8; 32];
            aws_lc_rs::rand::fill(&mut hash).map_err(|_| anyhow::anyhow!("rng"))?;
            // Expired rows ended 30 days ago: past the default 7-day retention, so the
            // server's cleanup deletes them while the benchmark runs.
            let (issued, expires) = if i < tokens { (t, t + 30 * 86_400) } else { (t - 60 * 86_400, t - 30 * 86_400) };
            sqlx::query(
                "INSERT INTO long_tokens (id, client_id, token_hash, scopes, issued_at, expires_at) \
                 VALUES (?, ?, ?, 'read', ?, ?)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&ids[i % ids.len().max(1)])
            .bind(&hash[..])
            .bind(issued)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        done = (done + 20_000).min(total);
    }
    Ok(())
}
