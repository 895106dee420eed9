mod common;

use common::*;

#[tokio::test]
async fn simple_query_through_the_proxy() {
    let proxy = TestProxy::start();
    let client = proxy.connect("postgres", "airlock_test").await;
    let rows = client
        .simple_query("select 1 as one; select 2")
        .await
        .unwrap();
    let n = rows
        .iter()
        .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
        .count();
    assert_eq!(n, 2);
    let row = client
        .query_one("select $1::int + 1", &[&41i32])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
}
