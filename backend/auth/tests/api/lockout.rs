//! Failed logins and the waits they earn, per email and client address.

use std::time::Duration;

use platform::internal_token::Caller;
use platform::testing::ManualClock;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestAuth, code};

#[tokio::test]
async fn locks_an_account_after_repeated_failures() {
    let auth = TestAuth::start_with(|c| c.max_failed_logins = 3).await;
    auth.register("ada@example.com").await;
    for _ in 0..3 {
        let (status, _) = auth
            .post(
                "/auth/login",
                &Caller::Anonymous,
                json!({"email": "ada@example.com", "password": "wrong password!"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = auth
        .request(reqwest::Method::POST, "/auth/login", &Caller::Anonymous)
        .json(&json!({"email": "ada@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= auth.config.login_lockout.as_secs() as i64);
    let body: Value = response.json().await.expect("json");
    assert_eq!(code(&body), "login_locked");
    assert_eq!(body["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn a_lockout_ends_with_its_window_and_success_resets_the_count() {
    let clock = ManualClock::new();
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 2;
        c.login_lockout = Duration::from_secs(1);
        c.clock = clock.clock();
    })
    .await;
    auth.register("ada@example.com").await;
    let wrong = json!({"email": "ada@example.com", "password": "wrong password!"});
    let right = json!({"email": "ada@example.com", "password": PASSWORD});
    for _ in 0..2 {
        auth.post("/auth/login", &Caller::Anonymous, wrong.clone()).await;
    }
    assert_eq!(
        auth.post("/auth/login", &Caller::Anonymous, right.clone())
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS
    );
    clock.advance(auth.config.login_lockout - Duration::from_millis(1));
    assert_eq!(
        auth.post("/auth/login", &Caller::Anonymous, right.clone())
            .await
            .0,
        StatusCode::TOO_MANY_REQUESTS,
        "the lockout holds to the end of its window"
    );
    clock.advance(Duration::from_millis(1));
    let (status, body) = auth.post("/auth/login", &Caller::Anonymous, right.clone()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the lockout should end with its window: {body}"
    );
    // Had the success not reset the count, the first of these would lock again.
    for _ in 0..2 {
        assert_eq!(
            auth.post("/auth/login", &Caller::Anonymous, wrong.clone())
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
    }
}

/// A login as the gateway forwards it from a client at `address`.
async fn login_from(auth: &TestAuth, address: &str, password: &str) -> (StatusCode, Option<i64>) {
    let response = auth
        .request(reqwest::Method::POST, "/auth/login", &Caller::Anonymous)
        .header("x-micro-client-ip", address)
        .json(&json!({"email": "ada@example.com", "password": password}))
        .send()
        .await
        .expect("answers");
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (response.status(), retry_after)
}

#[tokio::test]
async fn concurrent_wrong_passwords_cannot_exceed_the_budget() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 5;
        // Long enough that no attempt of the burst outlives the lock.
        c.login_lockout_base = Duration::from_secs(60);
    })
    .await;
    auth.register("ada@example.com").await;
    let attempts = (0..20).map(|_| login_from(&auth, "203.0.113.7", "wrong password!"));
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|(status, _)| status)
        .collect();
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Only an attempt that got past the reservation is answered 401 (its
    // password was checked); every other one is refused before bcrypt.
    assert_eq!((checked, refused), (5, 15), "{statuses:?}");
    // The right password is refused too while the lock lasts.
    let (status, retry_after) = login_from(&auth, "203.0.113.7", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|s| s > 1 && s <= 60), "{retry_after:?}");
}

#[tokio::test]
async fn a_lockout_from_one_address_does_not_stop_another() {
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 3;
        c.login_lockout_base = Duration::from_secs(60);
    })
    .await;
    auth.register("ada@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            login_from(&auth, "198.51.100.1", "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login_from(&auth, "198.51.100.1", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&auth, "198.51.100.2", PASSWORD).await.0,
        StatusCode::OK
    );
    // Hosts of one IPv6 /64 share a count; another network does not.
    for _ in 0..3 {
        login_from(&auth, "2001:db8:0:1::1", "wrong password!").await;
    }
    assert_eq!(
        login_from(&auth, "2001:db8:0:1::ffff", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from(&auth, "2001:db8:0:2::1", PASSWORD).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_delay_doubles_with_each_failure_up_to_its_cap_and_success_resets_it() {
    let clock = ManualClock::new();
    let auth = TestAuth::start_with(|c| {
        c.max_failed_logins = 2;
        c.login_lockout_base = Duration::from_secs(1);
        c.login_lockout = Duration::from_secs(3);
        c.clock = clock.clock();
    })
    .await;
    auth.register("ada@example.com").await;
    let from = "192.0.2.9";
    for _ in 0..2 {
        assert_eq!(
            login_from(&auth, from, "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let mut delays = Vec::new();
    for _ in 0..3 {
        let (status, retry_after) = login_from(&auth, from, "wrong password!").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let retry_after = retry_after.expect("a Retry-After");
        delays.push(retry_after);
        // A refused attempt costs nothing, so asking again does not extend the lock.
        assert_eq!(
            login_from(&auth, from, "wrong password!").await,
            (StatusCode::TOO_MANY_REQUESTS, Some(retry_after))
        );
        clock.advance(Duration::from_secs(retry_after.unsigned_abs()));
        assert_eq!(
            login_from(&auth, from, "wrong password!").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(delays, vec![1, 2, 3]);

    assert_eq!(
        login_from(&auth, from, PASSWORD).await.0,
        StatusCode::OK,
        "the right password gets through once the lock passes"
    );
    // The success reset the count: the free attempts are back.
    assert_eq!(
        login_from(&auth, from, "wrong password!").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&auth, from, "wrong password!").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from(&auth, from, "wrong password!").await,
        (StatusCode::TOO_MANY_REQUESTS, Some(1))
    );
}
