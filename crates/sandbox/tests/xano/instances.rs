use sandbox::xano::{SimAccount, SimInstance};
use serde_json::json;

use crate::helpers::{TestSim, assert_xano_error, status_and_json};

fn instance(name: &str, custom_domain: Option<&str>) -> SimInstance {
    SimInstance {
        name: name.to_owned(),
        display: format!("Instance {name}"),
        xano_domain: format!("{name}.n7.xano.io"),
        custom_domain: custom_domain.map(str::to_owned),
        rate_limit: true,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_are_a_plain_array_in_the_official_shape() {
    let app = TestSim::start().await;
    app.sim.add_instance(instance("x1234-4567-8901", None));
    app.sim
        .add_instance(instance("x9999-0000-1111", Some("api.example.test")));

    let (status, list) = status_and_json(app.get("/instance").await).await;

    assert_eq!(status, 200);
    assert_eq!(
        list[0],
        json!({
            "name": "x1234-4567-8901",
            "display": "Instance x1234-4567-8901",
            "xano_domain": "x1234-4567-8901.n7.xano.io",
            "custom_domain": null,
            "rate_limit": true,
            "meta_api": "https://x1234-4567-8901.n7.xano.io/api:meta",
            "meta_swagger": "https://x1234-4567-8901.n7.xano.io/apispec:meta?type=json",
        })
    );
    assert_eq!(list[1]["custom_domain"], "api.example.test");
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_is_fetched_by_name_and_an_unknown_name_is_a_404() {
    let app = TestSim::start().await;
    app.sim.add_instance(instance("x1234-4567-8901", None));

    let (status, one) = status_and_json(app.get("/instance/x1234-4567-8901").await).await;
    assert_eq!(status, 200);
    assert_eq!(one["display"], "Instance x1234-4567-8901");

    assert_xano_error(
        app.get("/instance/x0000-0000-0000").await,
        404,
        "ERROR_CODE_NOT_FOUND",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_belong_to_their_account() {
    let app = TestSim::start().await;
    let other = app.sim.add_account(SimAccount {
        id: "2".into(),
        name: "B".into(),
        email: "b@example.test".into(),
    });
    assert!(app.sim.add_instance_for(&other, instance("x2", None)));

    let (_, mine) = status_and_json(app.get("/instance").await).await;
    assert_eq!(mine, json!([]));
    assert_xano_error(app.get("/instance/x2").await, 404, "ERROR_CODE_NOT_FOUND").await;
    assert_eq!(app.get_as(&other, "/instance/x2").await.status(), 200);
}
