//! Every one of the ten endpoints, happy path, through the client.

use futures::TryStreamExt;
use master_api::{InstallAccess, TokenValue};
use sandbox::xano::SimInstance;

use crate::common::{CANONICAL, client_for, existing_token, start_sim, within};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_returns_the_account_behind_the_access_token() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let me = within(client.me()).await.unwrap();

    // Assert
    assert!(me.id.is_some());
    assert!(me.email.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_and_instance_by_name_return_the_official_shape() {
    // Arrange
    let sim = start_sim().await;
    sim.add_instance(SimInstance {
        name: "x1234-4567-8901".to_owned(),
        display: "Production".to_owned(),
        xano_domain: "x1234-4567-8901.n7.xano.io".to_owned(),
        custom_domain: None,
        rate_limit: true,
    });
    sim.add_instance(SimInstance {
        name: "x2222-3333-4444".to_owned(),
        display: "Staging".to_owned(),
        xano_domain: "x2222-3333-4444.n7.xano.io".to_owned(),
        custom_domain: Some("api.example.test".to_owned()),
        rate_limit: false,
    });
    let client = client_for(&sim).build().unwrap();

    // Act
    let all = within(client.instances()).await.unwrap();
    let one = within(client.instance("x2222-3333-4444")).await.unwrap();

    // Assert
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].label(), Some("Production"));
    assert_eq!(all[0].host(), Some("x1234-4567-8901.n7.xano.io"));
    assert_eq!(all[0].custom_domain, None);
    assert_eq!(all[0].rate_limit, Some(true));
    assert!(all[0].meta_api_url().is_some(), "meta_api is a URL");
    assert_eq!(one.name.as_deref(), Some("x2222-3333-4444"));
    assert_eq!(one.custom_domain.as_deref(), Some("api.example.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snippet_and_update_snippet_access_round_trip_both_fields() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let before = within(client.snippet(CANONICAL)).await.unwrap();
    let updated = within(client.update_snippet_access(
        CANONICAL,
        InstallAccess::Token,
        "Buy an install token at market.example",
    ))
    .await
    .unwrap();
    let after = within(client.snippet(CANONICAL)).await.unwrap();

    // Assert
    assert_eq!(before.install_access, Some(InstallAccess::Public));
    assert!(before.created_at.is_some(), "Xano's timestamp form parses");
    assert_eq!(updated.install_access, Some(InstallAccess::Token));
    assert_eq!(after, updated);
    assert_eq!(
        after.install_access_description.as_deref(),
        Some("Buy an install token at market.example")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_can_be_created_listed_updated_and_deleted() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let created = within(client.create_token(CANONICAL, 3)).await.unwrap();
    let listed = within(client.tokens(CANONICAL)).await.unwrap();
    sim.install(CANONICAL, created.token.expose()).unwrap();
    let updated = within(client.update_token(CANONICAL, &created.token, 10, 1))
        .await
        .unwrap();
    within(client.delete_token(CANONICAL, &created.token))
        .await
        .unwrap();
    let after_delete = within(client.tokens(CANONICAL)).await.unwrap();

    // Assert
    assert_eq!((created.max_installs, created.current_installs), (3, 0));
    assert!(created.created_at.is_some());
    assert_eq!(listed, vec![created.clone()]);
    assert_eq!(updated.token, created.token);
    assert_eq!((updated.max_installs, updated.current_installs), (10, 1));
    assert!(after_delete.is_empty());
    assert!(
        sim.install(CANONICAL, created.token.expose()).is_err(),
        "revoked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_token_that_is_already_gone_counts_as_success() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();
    let token = existing_token(&client).await;
    within(client.delete_token(CANONICAL, &token))
        .await
        .unwrap();

    // Act
    let again = within(client.delete_token(CANONICAL, &token)).await;
    let never_existed = within(client.delete_token(CANONICAL, &TokenValue::new("NOPE0000"))).await;

    // Assert
    assert!(again.is_ok(), "{again:?}");
    assert!(never_existed.is_ok(), "{never_existed:?}");
    assert_eq!(
        sim.calls().last().unwrap().status,
        404,
        "the server did say 404"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snippet_stream_follows_next_page_through_every_page() {
    // Arrange
    let sim = start_sim().await;
    for i in 0..6 {
        sim.add_snippet(&format!("snip-{i}"), &format!("Snippet {i}"));
    }
    sim.set_page_size(2);
    let client = client_for(&sim).build().unwrap();

    // Act
    let snippets: Vec<_> = within(client.snippets().try_collect()).await.unwrap();

    // Assert
    assert_eq!(snippets.len(), 7, "all snippets, in order, none twice");
    let mut canonicals: Vec<&str> = snippets.iter().map(|s| s.canonical.as_str()).collect();
    canonicals.dedup();
    assert_eq!(canonicals.len(), 7);
    let pages: Vec<String> = sim.calls().into_iter().map(|call| call.query).collect();
    assert_eq!(pages, ["page=1", "page=2", "page=3", "page=4"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_page_can_be_fetched_on_its_own() {
    // Arrange
    let sim = start_sim().await;
    sim.add_snippet("second", "Second");
    sim.set_page_size(1);
    let client = client_for(&sim).build().unwrap();

    // Act
    let page = within(client.snippets_page(2)).await.unwrap();

    // Assert
    assert_eq!(page.cur_page, Some(2));
    assert_eq!(page.prev_page, Some(1));
    assert_eq!(page.next_page, None);
    assert_eq!(page.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_values_are_percent_encoded_and_cannot_change_the_endpoint() {
    // Arrange
    let sim = start_sim().await;
    let client = client_for(&sim).build().unwrap();

    // Act
    let traversal = within(client.snippet("a/../b")).await;
    let query = within(client.tokens("x?y")).await;

    // Assert
    assert!(
        matches!(traversal, Err(master_api::Error::NotFound)),
        "{traversal:?}"
    );
    assert!(
        matches!(query, Err(master_api::Error::NotFound)),
        "{query:?}"
    );
    let paths: Vec<(String, String)> = sim
        .calls()
        .into_iter()
        .map(|call| (call.path, call.query))
        .collect();
    assert_eq!(
        paths,
        [
            ("/api:meta/snippet/a%2F..%2Fb".to_owned(), String::new()),
            ("/api:meta/snippet/x%3Fy/token".to_owned(), String::new()),
        ]
    );
}
