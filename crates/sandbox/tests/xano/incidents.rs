//! Incidents at Xano that are not the service's doing: a snippet that answers 404 for a while as
//! if deleted (its tokens come back with it), and token lists cut short.

use serde_json::json;

use crate::helpers::{TestSim, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn a_hidden_snippet_answers_404_and_comes_back_with_its_tokens() {
    // Arrange
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    let minted = app.create_token("abc", 3).await;

    // Act
    let hidden = app
        .control_post("/snippets/abc/hidden", &json!({ "hidden": true }))
        .await
        .status();
    let (while_hidden, _) = status_and_json(app.get("/snippet/abc/token").await).await;
    app.sim.set_snippet_hidden("abc", false);
    let (after, tokens) = status_and_json(app.get("/snippet/abc/token").await).await;

    // Assert
    assert_eq!(hidden, 204);
    assert_eq!(while_hidden, 404);
    assert_eq!(after, 200);
    assert_eq!(tokens[0]["token"], minted.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_token_list_shows_only_its_first_tokens_for_the_lists_it_was_set_for() {
    // Arrange
    let app = TestSim::start().await;
    app.sim.add_snippet("abc", "Snippet");
    for _ in 0..3 {
        app.create_token("abc", 3).await;
    }

    // Act: two lists cut to one token, then an empty one.
    let set = app
        .control_post(
            "/snippets/abc/truncate-tokens",
            &json!({ "count": 2, "keep": 1 }),
        )
        .await
        .status();
    let mut lengths = Vec::new();
    for _ in 0..3 {
        let (_, tokens) = status_and_json(app.get("/snippet/abc/token").await).await;
        lengths.push(tokens.as_array().unwrap().len());
    }
    app.sim.truncate_token_lists("abc", 1, 0);
    let left = app.sim.truncations_left("abc");
    let (_, empty) = status_and_json(app.get("/snippet/abc/token").await).await;

    // Assert
    assert_eq!(set, 204);
    assert_eq!(lengths, [1, 1, 3]);
    assert_eq!(left, 1);
    assert_eq!(empty.as_array().unwrap().len(), 0);
    assert_eq!(app.sim.truncations_left("abc"), 0);
}
