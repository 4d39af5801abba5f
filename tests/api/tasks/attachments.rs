//! Attachments: typed by their bytes, bounded in size, downloaded by link.

use serde_json::{json, Value};

use super::Company;
use crate::helpers::{error_code, Backend, Session, TestApp};
use crate::on_both_backends;

on_both_backends!(attachments_are_typed_by_their_bytes_and_downloaded_by_link);

async fn upload(
    c: &Company,
    who: &Session,
    task: &str,
    name: &str,
    bytes: Vec<u8>,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let operations = json!({
        "query": "mutation($t: ID!, $f: Upload!) { uploadTaskAttachment(taskId: $t, file: $f) { id filename contentType sizeBytes sha256 downloadUrl } }",
        "variables": { "t": task, "f": null }
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.f"] }).to_string())
        .part(
            "0",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    let response = c
        .app
        .http
        .post(c.app.url("/graphql"))
        .bearer_auth(&who.access)
        .header("graphql-preflight", "1")
        .multipart(form)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

async fn attachments_are_typed_by_their_bytes_and_downloaded_by_link(
    backend: Backend,
) -> anyhow::Result<()> {
    let Some(app) = TestApp::spawn_with(backend, &[("INTERLINK_MAX_UPLOAD_BYTES", "4096")]).await?
    else {
        return Ok(());
    };
    let c = Company::new(app).await?;
    let task = c.draft(&c.category, json!({})).await?;
    let pdf = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n".to_vec();
    let (status, body) = upload(&c, &c.executor, &task, "../../quote.pdf", pdf.clone()).await?;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let file = &body["data"]["uploadTaskAttachment"];
    assert_eq!(file["contentType"], "application/pdf", "{body}");
    assert_eq!(file["filename"], "quote.pdf");
    assert_eq!(file["sizeBytes"], pdf.len() as u64);

    let url = file["downloadUrl"].as_str().unwrap_or_default().to_owned();
    let downloaded = c.app.http.get(c.app.url(&url)).send().await?;
    assert_eq!(downloaded.status(), reqwest::StatusCode::OK);
    assert_eq!(
        downloaded
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    assert_eq!(downloaded.bytes().await?.to_vec(), pdf);
    let tampered = c.app.http.get(c.app.url(&format!("{url}x"))).send().await?;
    assert_eq!(tampered.status(), reqwest::StatusCode::UNAUTHORIZED);
    let access_token_as_link = format!(
        "/files/{}?token={}",
        file["id"].as_str().unwrap_or_default(),
        c.initiator.access
    );
    assert_eq!(
        c.app
            .http
            .get(c.app.url(&access_token_as_link))
            .send()
            .await?
            .status(),
        reqwest::StatusCode::UNAUTHORIZED
    );

    let listed = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { attachments { filename uploadedBy { id } } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        listed["task"]["attachments"][0]["uploadedBy"]["id"],
        c.executor.user_id.as_str()
    );

    // Refusals: empty, executable, too large, from someone off the task or unable to see it.
    let (_, empty) = upload(&c, &c.executor, &task, "empty.txt", Vec::new()).await?;
    assert_eq!(error_code(&empty), Some("BAD_USER_INPUT"), "{empty}");
    let (_, elf) = upload(
        &c,
        &c.executor,
        &task,
        "tool.pdf",
        b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0rest".to_vec(),
    )
    .await?;
    assert_eq!(error_code(&elf), Some("BAD_USER_INPUT"), "{elf}");
    let (status, _) = upload(&c, &c.executor, &task, "big.txt", vec![b'a'; 8192]).await?;
    assert_eq!(status, reqwest::StatusCode::PAYLOAD_TOO_LARGE);
    let (_, observer) = upload(&c, &c.observer, &task, "note.txt", b"hello".to_vec()).await?;
    assert_eq!(error_code(&observer), Some("FORBIDDEN"), "{observer}");
    let (_, stranger) = upload(&c, &c.stranger, &task, "note.txt", b"hello".to_vec()).await?;
    assert_eq!(error_code(&stranger), Some("NOT_FOUND"), "{stranger}");
    let listed = c
        .ok_as(
            &c.initiator,
            "query($id: ID!) { task(id: $id) { attachments { id } } }",
            json!({ "id": task }),
        )
        .await?;
    assert_eq!(
        listed["task"]["attachments"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}
