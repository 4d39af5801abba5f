//! Browsers on other origins (CORS, an allow-list) and the offline query page.

use reqwest::header::{
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD,
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION, ORIGIN,
};
use reqwest::{Method, StatusCode};

use crate::helpers::Backend;
use crate::spawn_or_skip;

const FRONT_END: &str = "https://app.example.com";

#[tokio::test]
async fn only_listed_origins_may_call_from_a_browser() -> anyhow::Result<()> {
    let app = spawn_or_skip!(
        Backend::Sqlite,
        &[("INTERLINK_CORS_ORIGINS", "https://app.example.com")]
    );
    let preflight = |origin: &str| {
        app.http
            .request(Method::OPTIONS, app.url("/graphql"))
            .header(ORIGIN, origin)
            .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type",
            )
            .send()
    };
    let allowed = preflight(FRONT_END).await?;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    assert_eq!(
        allowed.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&FRONT_END.parse()?)
    );
    let methods = allowed
        .headers()
        .get("access-control-allow-methods")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let headers = allowed
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_lowercase();
    assert!(headers.contains("authorization"), "{headers}");
    // Tokens travel in headers: credentials (cookies) are never allowed across origins.
    assert!(allowed
        .headers()
        .get("access-control-allow-credentials")
        .is_none());

    let other = preflight("https://evil.example.net").await?;
    assert!(other.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // The real request from the listed origin carries the header; the answer is the API's.
    let post = app
        .http
        .post(app.url("/graphql"))
        .header(ORIGIN, FRONT_END)
        .json(&serde_json::json!({ "query": "{ __typename }" }))
        .send()
        .await?;
    assert_eq!(
        post.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN),
        Some(&FRONT_END.parse()?)
    );
    assert_eq!(post.status(), StatusCode::OK);
    let exposed = post
        .headers()
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_lowercase();
    for name in ["retry-after", "content-disposition", "x-request-id"] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    Ok(())
}

#[tokio::test]
async fn without_a_list_no_origin_is_allowed() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    let preflight = app
        .http
        .request(Method::OPTIONS, app.url("/graphql"))
        .header(ORIGIN, FRONT_END)
        .header(ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await?;
    assert!(preflight
        .headers()
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
    Ok(())
}

#[tokio::test]
async fn the_query_page_is_served_whole_from_the_binary() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite);
    let page = app.http.get(app.url("/graphiql")).send().await?;
    assert_eq!(page.status(), StatusCode::OK);
    let policy = page
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let html = page.text().await?;
    // Nothing from elsewhere: every asset is a path on this server.
    let elsewhere: Vec<&str> = html
        .split(['"', '\''])
        .filter(|s| s.contains("://"))
        .collect();
    assert!(elsewhere.is_empty(), "the page references {elsewhere:?}");
    for asset in ["/graphiql/app.js", "/graphiql/style.css"] {
        assert!(html.contains(asset), "{asset}");
        let served = app.http.get(app.url(asset)).send().await?;
        assert_eq!(served.status(), StatusCode::OK, "{asset}");
        let kind = served
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(
            kind.starts_with("text/javascript") || kind.starts_with("text/css"),
            "{asset}: {kind}"
        );
        let body = served.text().await?;
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{asset}"
        );
    }
    // The root is the console now; the console links to the query page.
    let direct = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let root = direct.get(app.url("/")).send().await?;
    assert!(root.status().is_redirection(), "{}", root.status());
    assert_eq!(root.headers().get(LOCATION), Some(&"/sign-in".parse()?));
    Ok(())
}

#[tokio::test]
async fn production_serves_no_query_page() -> anyhow::Result<()> {
    let app = spawn_or_skip!(Backend::Sqlite, &[("INTERLINK_ENV", "production")]);
    for path in ["/graphiql", "/graphiql/app.js"] {
        let response = app.http.get(app.url(path)).send().await?;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // The console is no development tool: production serves it.
    let console = app.http.get(app.url("/")).send().await?;
    assert_eq!(console.status(), StatusCode::OK);
    assert!(console.text().await?.contains("action=\"/sign-in\""));
    Ok(())
}
