//! `/api/v1` through the router: bearer tokens, submissions and each refusal's status and
//! code, the sender's view and revocation, and what a refused submission leaves (nothing).

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use base64::Engine as _;

use super::{
    TestResult, api_call, api_post, assert_json_error, get, send, test_app, test_app_with,
};
use crate::audit;
use crate::store::testing as rows;
use crate::testing::TestApp;

#[tokio::test]
async fn api_needs_a_valid_token() -> TestResult {
    let t = test_app(1 << 20).await?;
    let body = r#"{"to":["a@example.org"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(None, "application/json", body)).await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), "Bearer");

    let reply = send(
        &t.router,
        api_post(Some("sp_wrong"), "application/json", body),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    assert_eq!(reply.header(header::WWW_AUTHENTICATE), "Bearer");

    let reply = send(
        &t.router,
        get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000"),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNAUTHORIZED, "unauthorized")?;
    Ok(())
}

#[tokio::test]
async fn api_refuses_bad_submissions_clearly() -> TestResult {
    let t = test_app(1000).await?;
    let token = Some(t.token.as_str());
    let json = "application/json";

    let reply = send(
        &t.router,
        api_post(token, json, r#"{"to": ["a@example.org"], "#),
    )
    .await?;
    assert_json_error(&reply, StatusCode::BAD_REQUEST, "invalid_json")?;

    let reply = send(
        &t.router,
        api_post(token, json, r#"{"subject":"s","text":"t"}"#),
    )
    .await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "missing_field")?;
    assert!(reply.text().contains("`to`"), "{}", reply.text());

    let body = r#"{"to":["ok@example.org","not an address"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_address")?;
    assert!(reply.text().contains("not an address"), "{}", reply.text());

    let body = r#"{"to":["a@x.org","b@x.org","c@x.org","d@x.org"],"subject":"s","text":"t"}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "too_many_recipients",
    )?;

    let body = r#"{"to":["a@x.org"],"subject":"s","text":"t","expires_in_days":9999}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_expiry")?;

    let body = r#"{"to":["a@x.org"],"subject":"s","text":"t","bcc":["x@y.org"]}"#;
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "invalid_field")?;

    // over max_message_bytes once decoded
    let big = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 1200]);
    let body = format!(
        r#"{{"to":["a@x.org"],"subject":"s","text":"t","attachments":[{{"filename":"a.bin","content_base64":"{big}"}}]}}"#
    );
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;

    // over the body limit itself
    let huge = "x".repeat(crate::web::api::body_limit(&t.config) + 10);
    let body = format!(r#"{{"to":["a@x.org"],"subject":"s","text":"{huge}"}}"#);
    let reply = send(&t.router, api_post(token, json, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;

    let reply = send(&t.router, api_post(token, "text/plain", "hello")).await?;
    assert_json_error(
        &reply,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )?;
    Ok(())
}

#[tokio::test]
async fn api_unknown_message_is_404() -> TestResult {
    let t = test_app(1 << 20).await?;
    for id in ["0192f0e8-0000-7000-8000-000000000000", "not-a-uuid"] {
        let request = Request::get(format!("/api/v1/messages/{id}"))
            .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
            .body(Body::empty())?;
        let reply = send(&t.router, request).await?;
        assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    }
    let request = Request::delete("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
        .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
        .body(Body::empty())?;
    let reply = send(&t.router, request).await?;
    assert_json_error(&reply, StatusCode::NOT_FOUND, "not_found")?;
    Ok(())
}

#[tokio::test]
async fn openapi_describes_the_api() -> TestResult {
    let t = test_app(1 << 20).await?;
    let reply = send(&t.router, get("/api/openapi.json")).await?;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json()?;
    assert!(
        json["paths"]["/api/v1/messages"]["post"].is_object(),
        "{json}"
    );
    assert!(
        json["paths"]["/api/v1/messages/{id}"]["delete"].is_object(),
        "{json}"
    );
    assert!(
        json["paths"]["/api/v1/messages/{id}/unlock"]["post"].is_object(),
        "{json}"
    );
    assert!(
        json["components"]["securitySchemes"]["bearer"].is_object(),
        "{json}"
    );
    Ok(())
}

/// Proof: a JSON submission is `201` with a `Location` of the message and its recipients; the
/// sender's `GET` of it is `200` JSON, and `DELETE` is `204`.
#[tokio::test]
async fn json_submission_is_201_with_its_location_and_view() -> TestResult {
    let t = test_app(1 << 20).await?;
    let body = serde_json::json!({
        "to": ["patient@example.org"], "subject": "Your results", "text": "Hello",
    });
    let reply = t
        .send(api_post(
            Some(&t.token),
            "application/json",
            body.to_string(),
        ))
        .await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let created = reply.json()?;
    let message_id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(
        reply
            .header(header::LOCATION)
            .ends_with(&format!("/api/v1/messages/{message_id}"))
    );
    assert_eq!(created["recipients"][0]["address"], "patient@example.org");

    let uri = format!("/api/v1/messages/{message_id}");
    let reply = t.send(api_call(Method::GET, &uri, &t.token)).await?;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let view = reply.json()?;
    assert_eq!(
        view["recipients"][0]["address"], "patient@example.org",
        "{view}"
    );
    assert_eq!(view["recipients"][0]["open_count"], 0, "{view}");

    let reply = t.send(api_call(Method::DELETE, &uri, &t.token)).await?;
    assert_eq!(reply.status, StatusCode::NO_CONTENT, "{}", reply.text());
    let view = t
        .send(api_call(Method::GET, &uri, &t.token))
        .await?
        .json()?;
    assert!(view["revoked_at"].is_string(), "{view}");
    Ok(())
}

#[tokio::test]
async fn multipart_submission_streams_attachments() -> TestResult {
    let t = test_app(1 << 20).await?;
    let boundary = "XyZboundary";
    let file: Vec<u8> = (0..5000u32).map(|i| (i % 7) as u8).collect();
    let mut body = Vec::new();
    let mut text_field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    text_field("to", "a@example.org, b@example.org");
    text_field("subject", "Multipart");
    text_field("text", "Body");
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"data.bin\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
    let json = reply.json()?;
    assert_eq!(
        json["recipients"].as_array().map(Vec::len),
        Some(2),
        "{json}"
    );

    // Missing `to` in multipart is a 422 naming the field, and keeps nothing.
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\nx\r\n--{boundary}--\r\n"
    );
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_json_error(&reply, StatusCode::UNPROCESSABLE_ENTITY, "missing_field")?;
    assert!(reply.text().contains("`to`"));
    Ok(())
}

#[tokio::test]
async fn multipart_over_the_limit_is_413_and_keeps_nothing() -> TestResult {
    let t = test_app(2000).await?;
    let boundary = "b0undary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\na@example.org\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"subject\"\r\n\r\ns\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nt\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"attachment\"; filename=\"big.bin\"\r\n\r\n"
    )
    .into_bytes();
    body.extend(std::iter::repeat_n(b'z', 5000));
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ctype = format!("multipart/form-data; boundary={boundary}");
    let reply = send(&t.router, api_post(Some(&t.token), &ctype, body)).await?;
    assert_json_error(&reply, StatusCode::PAYLOAD_TOO_LARGE, "too_large")?;
    assert!(
        t.app.outbox()?.is_empty(),
        "a refused message notified someone"
    );
    Ok(())
}

#[tokio::test]
async fn each_api_request_audits_one_token_use_with_the_peer_ip() -> TestResult {
    let t = test_app(1 << 20).await?;
    for _ in 0..2 {
        let mut request = Request::get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
            .header(header::AUTHORIZATION, format!("Bearer {}", t.token))
            // not a trusted proxy: the header is ignored
            .header("x-forwarded-for", "203.0.113.9")
            .header(header::USER_AGENT, "curl/8")
            .body(Body::empty())?;
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [192, 0, 2, 7],
                40000,
            ))));
        let reply = send(&t.router, request).await?;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
    }
    let request = Request::get("/api/v1/messages/0192f0e8-0000-7000-8000-000000000000")
        .header(header::AUTHORIZATION, "Bearer sp_nope")
        .body(Body::empty())?;
    assert_eq!(
        send(&t.router, request).await?.status,
        StatusCode::UNAUTHORIZED
    );

    let rows = rows::audit_rows(&t.store).await?;
    let used: Vec<_> = rows.iter().filter(|r| r.action == "token_used").collect();
    assert_eq!(used.len(), 2);
    assert!(used.iter().all(|r| r.ip.as_deref() == Some("192.0.2.7")));
    assert!(used.iter().all(|r| r.actor == "token:sender@example.org"));
    assert!(
        used.iter()
            .all(|r| r.user_agent.as_deref() == Some("curl/8"))
    );
    assert_eq!(
        rows.iter().filter(|r| r.action == "token_rejected").count(),
        1
    );
    assert!(
        rows.iter().all(|r| !r.detail.contains("sp_")),
        "a token reached the log"
    );
    assert!(audit::verify(&t.store).await?.ok());
    Ok(())
}

/// Invariant 3 and flow 2: when the outbound relay cannot take the notification, the API
/// answers 503 and keeps nothing — no message, part, chunk or recipient row — but audits why.
#[tokio::test]
async fn relay_failure_gives_503_and_keeps_nothing() -> TestResult {
    // A port with nobody listening: the handoff fails with a temporary error.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await?
        .local_addr()?
        .port();
    let t = test_app_with(TestApp::builder().set("outbound", format!("smtp://127.0.0.1:{closed}")))
        .await?;
    let body = serde_json::json!({
        "to": ["bob@example.org"], "subject": "s", "text": "t",
        "attachments": [{"filename": "a.bin", "content_type": "application/octet-stream",
                         "content_base64": base64::engine::general_purpose::STANDARD.encode([7u8; 100_000])}]
    });
    let reply = send(
        &t.router,
        api_post(Some(&t.token), "application/json", body.to_string()),
    )
    .await?;
    assert_eq!(
        reply.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        reply.text()
    );
    assert!(
        reply.json()?["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    for table in ["messages", "parts", "chunks", "recipients"] {
        let n = rows::count_rows(&t.store, table).await?;
        assert_eq!(n, 0, "{table} must be empty after a refused submission");
    }
    let audit_rows = rows::audit_rows(&t.store).await?;
    let failed = audit_rows
        .iter()
        .filter(|r| r.action == "notification_failed" || r.action == "submit_rejected")
        .count();
    assert_eq!(failed, 2);
    assert!(audit::verify(&t.store).await?.ok());
    Ok(())
}
