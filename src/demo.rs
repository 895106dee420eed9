//! `airlock demo`: a throwaway PostgreSQL with a small sample schema, airlock
//! in front of it, and the psql command to try it. Ctrl-C stops and removes
//! everything.

use anyhow::{Context, Result};
use tokio::net::TcpListener;

use crate::cluster::{ClusterOptions, TempCluster};
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
CREATE ROLE alice LOGIN;
GRANT ALL ON ALL TABLES IN SCHEMA public TO alice;
GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO alice;
";

/// Runs the demo until Ctrl-C.
pub async fn run(port: u16) -> Result<()> {
    eprintln!("starting a throwaway PostgreSQL ...");
    let cluster = tokio::task::block_in_place(|| TempCluster::start(&ClusterOptions::default()))
        .context("starting PostgreSQL")?;
    cluster.psql("postgres", SAMPLE_SCHEMA)?;
    cluster.psql("app", SAMPLE_DATA)?;
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let proxy = Proxy::new(Config::new(listen, cluster.addr()));
    println!();
    println!(
        "airlock is listening on {listen}, in front of PostgreSQL on {}.",
        cluster.addr()
    );
    println!("Connect with:");
    println!();
    println!("    psql \"host=127.0.0.1 port={port} user=alice dbname=app\"");
    println!();
    println!("Try: SELECT * FROM customers LIMIT 5;   Press Ctrl-C to stop and remove everything.");
    proxy
        .serve(listener, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    eprintln!("stopping PostgreSQL and removing its files ...");
    drop(cluster);
    Ok(())
}
