//! `airlock demo`: a throwaway PostgreSQL with a small sample schema, airlock
//! in front of it with the shipped policy, an approval store and two demo
//! reviewers, and the commands to try it. Ctrl-C stops and removes
//! everything.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::approval::{ApprovalSettings, Approvals};
use crate::cluster::{ClusterOptions, TempCluster};
use crate::config::Reviewer;
use crate::store::Store;
use crate::{Config, Proxy};

const SAMPLE_SCHEMA: &str = "
CREATE DATABASE app;
";

const SAMPLE_DATA: &str = "
CREATE TABLE customers (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text UNIQUE NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE accounts (
    id serial PRIMARY KEY,
    customer_id int NOT NULL REFERENCES customers(id),
    balance numeric(12,2) NOT NULL DEFAULT 0
);
INSERT INTO customers (name, email)
    SELECT 'customer ' || i, 'customer' || i || '@example.com' FROM generate_series(1, 50) i;
INSERT INTO accounts (customer_id, balance)
    SELECT id, (id * 37 % 1000)::numeric FROM customers;
ANALYZE;
CREATE ROLE alice LOGIN;
GRANT ALL ON ALL TABLES IN SCHEMA public TO alice;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice;
";

fn token() -> String {
    (0..24)
        .map(|_| {
            let c = rand::random::<u8>() % 36;
            (if c < 10 { b'0' + c } else { b'a' + c - 10 }) as char
        })
        .collect()
}

/// Runs the demo until Ctrl-C.
pub async fn run(port: u16) -> Result<()> {
    eprintln!("starting a throwaway PostgreSQL ...");
    // Started from this thread on purpose: the server lives as long as the
    // thread that started it (see crate::cluster), and this one is main's.
    let cluster = TempCluster::start(&ClusterOptions::default()).context("starting PostgreSQL")?;
    cluster.psql("postgres", SAMPLE_SCHEMA)?;
    cluster.psql("app", SAMPLE_DATA)?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], port + 1));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let admin_listener = TcpListener::bind(admin)
        .await
        .with_context(|| format!("listening on {admin}"))?;
    let (bob, carol) = (token(), token());
    let mut config = Config::new(listen, cluster.addr());
    config.admin_listen = Some(admin);
    config.reviewers = vec![
        Reviewer {
            name: "bob".into(),
            token: bob.clone(),
            groups: vec!["reviewers".into()],
            roles: vec![],
        },
        Reviewer {
            name: "carol".into(),
            token: carol.clone(),
            groups: vec!["reviewers".into()],
            roles: vec![],
        },
    ];
    let store = Store::open(&format!("sqlite://{}/airlock.db", cluster.dir().display())).await?;
    let proxy = Proxy::new(config);
    let _ = proxy.approvals.set(Approvals::start(
        store,
        ApprovalSettings {
            review_url: format!("http://{admin}/api/v1/requests/"),
            estimates: Some(format!(
                "host=127.0.0.1 port={} user=postgres dbname=app",
                cluster.port()
            )),
            ..Default::default()
        },
    ));
    tokio::spawn(crate::admin::serve(
        admin_listener,
        Arc::clone(&proxy),
        std::future::pending(),
    ));
    println!();
    println!(
        "airlock is listening on {listen}, in front of PostgreSQL on {}.",
        cluster.addr()
    );
    println!("Connect as alice:");
    println!();
    println!("    psql \"host=127.0.0.1 port={port} user=alice dbname=app\"");
    println!();
    println!("Reads run at once:   SELECT * FROM customers LIMIT 5;");
    println!("Writes are held:     UPDATE accounts SET balance = balance + 10 WHERE id = 3;");
    println!();
    println!("Review them (reviewers bob and carol; DELETE without WHERE needs both):");
    println!();
    println!("    curl -s -H 'Authorization: Bearer {bob}' 'http://{admin}/api/v1/requests?status=pending'");
    println!("    curl -s -H 'Authorization: Bearer {bob}' -d '{{\"comment\": \"ok\"}}' -H 'Content-Type: application/json' http://{admin}/api/v1/requests/ID/approve");
    println!("    curl -s -H 'Authorization: Bearer {carol}' -d '{{\"reason\": \"no\"}}' -H 'Content-Type: application/json' http://{admin}/api/v1/requests/ID/reject");
    println!();
    println!("Press Ctrl-C to stop and remove everything.");
    proxy
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!("stopping PostgreSQL and removing its files ...");
    drop(cluster);
    Ok(())
}
