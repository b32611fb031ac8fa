//! Starting and stopping the simulator on the runtimes tests and binaries use.

use std::net::{SocketAddr, TcpListener};

use sandbox::xano::{XanoSim, XanoSimConfig};

async fn me_status(sim: &XanoSim) -> reqwest::Result<u16> {
    let response = reqwest::Client::new()
        .get(format!("{}/auth/me", sim.base_url()))
        .bearer_auth(sim.access_token())
        .send()
        .await?;
    Ok(response.status().as_u16())
}

#[tokio::test]
async fn the_simulator_serves_from_a_current_thread_test_runtime() {
    let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
    assert_eq!(me_status(&sim).await.unwrap(), 200);
    sim.stop().await;
}

#[test]
fn the_simulator_serves_from_a_plain_tokio_runtime_and_stops_listening_when_stopped() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sim = XanoSim::start(XanoSimConfig::default()).await.unwrap();
        let base = sim.base_url();
        assert_eq!(base.as_str(), format!("http://{}/api:meta", sim.addr()));
        assert!(!base.as_str().ends_with('/'));
        assert_eq!(me_status(&sim).await.unwrap(), 200);

        let addr = sim.addr();
        sim.stop().await;

        let refused = reqwest::Client::new()
            .get(format!("http://{addr}/api:meta/auth/me"))
            .send()
            .await;
        assert!(refused.is_err(), "nothing listens after stop");
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn start_on_listens_on_the_given_address() {
    let free: SocketAddr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();

    let sim = XanoSim::start_on(free).await.unwrap();

    assert_eq!(sim.addr(), free);
    assert_eq!(me_status(&sim).await.unwrap(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fixed_access_token_is_used_and_kept_out_of_debug_output() {
    let config = XanoSimConfig {
        access_token: Some("fixed-secret-token".into()),
        ..Default::default()
    };
    assert!(!format!("{config:?}").contains("fixed-secret-token"));

    let sim = XanoSim::start(config).await.unwrap();

    assert_eq!(sim.access_token(), "fixed-secret-token");
    assert_eq!(me_status(&sim).await.unwrap(), 200);
    assert!(!format!("{sim:?}").contains("fixed-secret-token"));
}

#[test]
fn the_simulator_handle_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<XanoSim>();
}
