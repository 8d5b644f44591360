//! `ortaq node token issue|list|revoke` with the real binary: tokens are listed by id (never by
//! the token), and one revoked from the command line while the node runs is refused by it
//! within a second, without a restart, while the others go on working.

use std::path::Path;
use std::time::{Duration, Instant};

use host::process::{NodeProcess, SENDER};

fn exe() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ortaq"))
}

async fn status(base: &str, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{base}/v1/inbox"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_from_the_command_line_is_refused_by_the_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = NodeProcess::configure(exe(), dir.path()).unwrap();
    let (first, second) = (node.token(SENDER).unwrap(), node.token(SENDER).unwrap());
    node.start().await.unwrap();
    assert_eq!(status(&node.base, &first).await, 200);
    assert_eq!(status(&node.base, &second).await, 200);

    let list = node.cli(&["node", "token", "list"]).unwrap();
    assert!(list.status.success());
    let list = String::from_utf8(list.stdout).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        !list.contains(&first) && !list.contains(&second),
        "a token is never shown again: {list}"
    );
    // The id of `first`: the first 16 hex digits of its SHA-256.
    let id = &node::token_hash(&first)[..16];
    assert!(list.contains(id), "{list}");

    let bad = node
        .cli(&["node", "token", "revoke", "--id", "not-an-id"])
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a token id"));

    let revoked = Instant::now();
    let out = node.cli(&["node", "token", "revoke", "--id", id]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 token(s) revoked"));
    while status(&node.base, &first).await != 401 {
        assert!(
            revoked.elapsed() < Duration::from_secs(5),
            "the running node still takes the revoked token"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&node.base, &second).await, 200);
    let list = node.cli(&["node", "token", "list"]).unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("revoked"));
    assert!(node.terminate().unwrap().success());
}
