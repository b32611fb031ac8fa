//! The replay of a transaction of several statements (the shape of `payments::apply` before it
//! became one function call): each pgbench transaction must take its own purchase by its key, the
//! tier and the token from the statements that returned them (`\gset`, also inside an array), and
//! write what the recorded transaction wrote. Needs PostgreSQL (`DATABASE_URL`, default the local
//! server) and pgbench, as the benchmark does.

use sqlx::{Connection, Executor, PgConnection, PgPool};
use uuid::Uuid;

use super::build;
use crate::pgbench::{Keys, PGBENCH};
use crate::trips::Recording;
use crate::wire::Wire;

const SCHEMA: &str = "
    create table purchase (purchase_id uuid primary key, tier_id uuid not null,
                           status text not null default 'pending');
    create table token (token_id bigserial primary key, tier_id uuid not null, purchase_id uuid,
                        state text not null default 'available');
    create table trail (purchase_id uuid[] not null, token_id bigint[] not null, detail jsonb[] not null);";

/// One recorded run: the purchase paid, a token of its tier claimed, the trail written.
async fn fulfil(pool: &PgPool, n: u64) -> (Uuid, i64) {
    let purchase = Keys::of(PGBENCH, n).purchase;
    let mut tx = pool.begin().await.unwrap();
    let tier: Uuid = sqlx::query_scalar(
        "update purchase set status = 'paid' where purchase_id = $1 returning tier_id",
    )
    .bind(purchase)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let token: i64 = sqlx::query_scalar(
        "update token set state = 'assigned', purchase_id = $2
         where token_id = (select token_id from token where tier_id = $1 and state = 'available'
                           order by token_id limit 1 for update skip locked)
         returning token_id",
    )
    .bind(tier)
    .bind(purchase)
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    sqlx::query("insert into trail values ($1, $2, $3)")
        .bind(vec![purchase])
        .bind(vec![None, Some(token)])
        .bind(vec![
            serde_json::json!({ "from": "pending", "at": "12:00" }),
        ])
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (tier, token)
}

#[tokio::test]
#[allow(clippy::too_many_lines)] // one scenario, arranged, replayed and checked in order
async fn a_transaction_of_several_statements_replays_with_its_own_keys_and_results() {
    // Arrange: a database of its own, purchases numbered as pgbench's over two tiers, tokens.
    let server = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let mut admin = PgConnection::connect(&server).await.unwrap();
    let name = format!("market_bench_replay_{}", Uuid::new_v4().simple());
    admin
        .execute(format!("create database {name}").as_str())
        .await
        .unwrap();
    let mut url: url::Url = server.parse().unwrap();
    url.set_path(&format!("/{name}"));
    let db = PgPool::connect(url.as_str()).await.unwrap();
    sqlx::raw_sql(SCHEMA).execute(&db).await.unwrap();
    let tiers = [Uuid::new_v4(), Uuid::new_v4()];
    for n in 1..=20u64 {
        sqlx::query("insert into purchase (purchase_id, tier_id) values ($1, $2)")
            .bind(Keys::of(PGBENCH, n).purchase)
            .bind(tiers[usize::try_from(n % 2).unwrap()])
            .execute(&db)
            .await
            .unwrap();
    }
    sqlx::query(
        "insert into token (tier_id) select t from unnest($1::uuid[]) t, generate_series(1, 30)",
    )
    .bind(&tiers[..])
    .execute(&db)
    .await
    .unwrap();
    let upstream = tokio::net::lookup_host((
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let wire = Wire::start(upstream).await.unwrap();
    let mut proxied = url.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(wire.addr.port())).unwrap();
    proxied.query_pairs_mut().append_pair("sslmode", "disable");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(proxied.as_str())
        .await
        .unwrap();
    let mut runs = Vec::new();
    for n in [1, 2] {
        wire.reset();
        fulfil(&pool, n).await;
        runs.push(wire.take());
    }
    let recording = Recording {
        steady: runs.pop().unwrap(),
        first: runs.pop().unwrap(),
        numbers: [1, 2],
    };

    // Act: the replay built, then run by pgbench: 2 clients, 3 transactions each.
    let replay = build(&db, &recording, 2, 3).await.unwrap();
    let script = std::env::temp_dir().join(format!("{name}.sql"));
    std::fs::write(&script, &replay.script).unwrap();
    let out = tokio::process::Command::new("pgbench")
        .args([
            "-n", "-M", "prepared", "-c", "2", "-j", "1", "-t", "3", "-D", "k=0",
        ])
        .args(["-h", url.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &url.port().unwrap_or(5432).to_string()])
        .args([
            "-U",
            if url.username().is_empty() {
                "postgres"
            } else {
                url.username()
            },
        ])
        .arg("-f")
        .arg(&script)
        .arg(&name)
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&script);

    // Assert: BEGIN, three statements, COMMIT; the tier and the token come from their statements.
    let log = format!(
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        replay.script
    );
    assert!(out.status.success(), "{log}");
    assert_eq!(replay.commands, 5, "{log}");
    assert!(replay.script.contains("(:r1_tier_id)::uuid"), "{log}");
    assert!(replay.script.contains("array_replace("), "{log}");
    assert!(replay.script.contains(":r2_token_id"), "{log}");
    let (paid, matched, trails): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from purchase where status = 'paid'),
                (select count(*) from purchase p join token t using (purchase_id)
                 where p.status = 'paid' and t.tier_id = p.tier_id and t.state = 'assigned'),
                (select count(*) from trail r join token t on t.token_id = r.token_id[2]
                 where t.purchase_id = r.purchase_id[1] and r.detail[1] ->> 'at' = '12:00')",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((paid, matched, trails), (8, 8, 8), "{log}");
    let numbers: Vec<Uuid> = sqlx::query_scalar(
        "select purchase_id from purchase where status = 'paid' order by purchase_id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let expected: Vec<Uuid> = (1..=8).map(|n| Keys::of(PGBENCH, n).purchase).collect();
    assert_eq!(numbers, expected, "{log}");
    pool.close().await;
    db.close().await;
    admin
        .execute(format!("drop database {name} with (force)").as_str())
        .await
        .unwrap();
}
