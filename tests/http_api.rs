//! The HTTP API's router driven request by request (`tower::ServiceExt::
//! oneshot`), against a real SQLite store and the shipped flows: every
//! documented route refuses the unauthenticated, roles see what they may,
//! bad input gets 400/422 naming the field, the figures match the records
//! written, the event stream starts with a snapshot and sends changes, and
//! the OpenAPI document covers every route the router serves.

mod common;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, watch};
use tower::ServiceExt;
use vaxel::acd::view::{AgentCounts, AgentLive, CallerLive, QueueLive, StateName};
use vaxel::acd::{AcdEvent, Status};
use vaxel::engine::{CallRecord, StoreRequest};
use vaxel::http::live::Live;
use vaxel::http::{HttpState, QueueInfo};
use vaxel::store::{Store, StoreSettings};

const ADMIN: &str = "admin-token-0123456789abcdef";
const READ: &str = "read-token-0123456789abcdef";

struct Api {
    app: axum::Router,
    live: watch::Sender<Arc<Live>>,
    acd: mpsc::UnboundedReceiver<AcdEvent>,
    store: Arc<Store>,
    flows_dir: PathBuf,
    _flows: watch::Sender<Arc<vaxel::flow::FlowSet>>,
}

fn queue_live(name: &str, waiting: usize) -> QueueLive {
    QueueLive {
        queue: name.into(),
        waiting,
        callbacks_waiting: 0,
        longest_wait_s: 0,
        ewt_s: Some(60),
        agents: AgentCounts {
            staffed: 1,
            free: 1,
            ..Default::default()
        },
        high_load: false,
        aht_s: 180,
        ewt_error_s: None,
        ewt_samples: 0,
    }
}

fn anna(caller: Option<&str>) -> AgentLive {
    AgentLive {
        id: "anna".into(),
        name: "Anna".into(),
        status: Status::Available,
        state: if caller.is_some() {
            StateName::Ringing
        } else {
            StateName::Idle
        },
        reachable: true,
        calls: 0,
        skills: Default::default(),
        languages: vec!["sv".into()],
        caller: caller.map(|n| CallerLive {
            number: n.into(),
            display: n.into(),
            queue: "kundtjanst".into(),
            callback: false,
        }),
    }
}

fn copy_flows(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for f in vaxel::flow::load::flow_files(&common::root().join("flows")).unwrap() {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

fn known() -> vaxel::flow::validate::Known {
    vaxel::config::Config::default().known()
}

/// The reloader's part, for tests: reads the folder again when a file changes.
fn reload_on_change(dir: PathBuf, tx: watch::Sender<Arc<vaxel::flow::FlowSet>>) {
    let stamp = |d: &Path| -> Vec<(PathBuf, std::time::SystemTime)> {
        vaxel::flow::load::flow_files(d)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.clone(), p.metadata().ok()?.modified().ok()?)))
            .collect()
    };
    // Taken now: the task may first run only after the first write.
    let mut seen = stamp(&dir);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = stamp(&dir);
            if now != seen {
                seen = now;
                let prompts = tx.borrow().prompts.clone();
                match vaxel::flow::load::load_dir(&dir, prompts, &known()) {
                    (Some(set), _) => {
                        let _ = tx.send(Arc::new(set));
                    }
                    (None, problems) => eprintln!("test reloader: {problems:?}"),
                }
            }
        }
    });
}

async fn api(name: &str) -> Api {
    api_with_cors(name, &[]).await
}

async fn api_with_cors(name: &str, cors: &[String]) -> Api {
    let dir = common::temp_dir(&format!("http-{name}"));
    let flows_dir = dir.join("flows");
    copy_flows(&flows_dir);
    let settings = StoreSettings {
        url: format!("sqlite://{}", dir.join("vaxel.db").display()),
        data_dir: dir.clone(),
        repeat_days: 7,
        retention_days: 30,
    };
    let store = Arc::new(Store::open(settings).await.unwrap());
    let (set, problems) = vaxel::flow::load::load_dir(&flows_dir, common::prompts(), &known());
    let set = Arc::new(set.unwrap_or_else(|| panic!("{problems:?}")));
    let (flows_tx, flows_rx) = watch::channel(set);
    reload_on_change(flows_dir.clone(), flows_tx.clone());
    let (live_tx, live_rx) = watch::channel(Arc::new(Live::new(
        1,
        0,
        vec![queue_live("kundtjanst", 0), queue_live("order", 0)],
        vec![anna(None)],
    )));
    let (acd_tx, acd_rx) = mpsc::unbounded_channel();
    let (calls, _) = broadcast::channel(16);
    let cfg = vaxel::config::http::HttpConfig {
        admin_tokens: vec![ADMIN.into()],
        read_tokens: vec![READ.into()],
        ..Default::default()
    };
    let health = Arc::new(vaxel::http::metrics::Health::new(2));
    let mut queues = HashMap::new();
    for q in ["kundtjanst", "order"] {
        queues.insert(
            q.to_string(),
            QueueInfo {
                service_level_s: 20,
                wrap_up_s: 10,
                tz: jiff::tz::TimeZone::get("Europe/Stockholm").unwrap(),
                hours: None,
            },
        );
    }
    let (_closing_tx, closing) = watch::channel(false);
    std::mem::forget(_closing_tx);
    let state = HttpState {
        metrics: Arc::new(vaxel::http::metrics::registry(
            health.clone(),
            live_rx.clone(),
        )),
        live: live_rx,
        calls,
        acd: acd_tx,
        store: store.clone(),
        auth: Arc::new(vaxel::http::auth::Auth::new(
            &cfg,
            [("anna".to_string(), "anna-secret".to_string())].into(),
        )),
        flows: Arc::new(vaxel::http::flows::FlowFiles::new(
            flows_dir.clone(),
            known(),
            flows_rx,
        )),
        health,
        queues: Arc::new(queues),
        repeat_days: 7,
        callback_promise_s: 3600,
        reports: Arc::default(),
        closing,
        sip: None,
        call_us: Arc::default(),
    };
    let app = vaxel::http::router(state, cors).layer(axum::extract::connect_info::MockConnectInfo(
        std::net::SocketAddr::from(([127, 0, 0, 1], 40000)),
    ));
    Api {
        app,
        live: live_tx,
        acd: acd_rx,
        store,
        flows_dir,
        _flows: flows_tx,
    }
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Value,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        auth: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(a) = auth {
            req = if a.starts_with("vaxel_session=") {
                req.header(header::COOKIE, a)
            } else {
                req.header(header::AUTHORIZATION, format!("Bearer {a}"))
            };
        }
        let req = match body {
            Some(b) => req
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(b.to_string())),
            None => req.body(Body::empty()),
        }
        .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, auth: Option<&str>) -> Reply {
        self.call(Method::GET, uri, auth, None).await
    }

    async fn openapi(&self) -> Value {
        self.get("/api/v1/openapi.json", None).await.body
    }
}

/// Every operation in the OpenAPI document, with its path made concrete.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{name}", "kundtjanst")
            .replace("{id}", "anna")
            .replace("{number}", "+46701234567");
        for m in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            out.push((method, concrete.clone()));
        }
    }
    out
}

#[tokio::test]
async fn every_documented_route_refuses_requests_without_credentials() {
    let api = api("noauth").await;
    let doc = api.openapi().await;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    assert!(ops.len() >= 20, "{ops:?}");
    for (method, path) in ops {
        // Signing in and out needs no credentials, by design.
        if path == "/api/v1/session" && method != Method::GET {
            continue;
        }
        let body = matches!(method, Method::PUT | Method::POST).then(|| json!({}));
        let r = api.call(method.clone(), &path, None, body.clone()).await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path}: {:?}",
            r.body
        );
        assert!(
            r.body["error"].is_string(),
            "{method} {path}: a JSON error body"
        );
        assert!(r.headers.contains_key(header::WWW_AUTHENTICATE));
        // A wrong token is no better.
        let r = api
            .call(method.clone(), &path, Some("not-a-token-at-all-000"), body)
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bad token"
        );
    }
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let api = api("openapi").await;
    let doc = api.openapi().await;
    // Every documented operation is served (not 404/405) for an admin.
    for (method, path) in operations(&doc) {
        let body = matches!(method, Method::PUT | Method::POST).then(|| json!({}));
        let r = if path.ends_with("/events") {
            // A stream: only its head is looked at (below, in its own test).
            continue;
        } else {
            api.call(method.clone(), &path, Some(ADMIN), body).await
        };
        assert!(
            r.status != StatusCode::NOT_FOUND
                || r.body["error"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("not found")),
            "{method} {path} is documented but not served"
        );
        assert_ne!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
    }
    // And every route is documented: the API's routes are registered only
    // through utoipa-axum's `routes!`, which documents them; the only plain
    // axum routes are the pages and the document itself.
    let src = common::root().join("src/http");
    for f in std::fs::read_dir(&src).unwrap() {
        let p = f.unwrap().path();
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate() {
            if line.contains(".route(") {
                let page = name == "pages.rs";
                let next: String = text.lines().skip(i).take(3).collect();
                let doc_route = name == "mod.rs" && next.contains("\"/api/v1/openapi.json\"");
                // Not API: SIP over WebSocket, and the "call us" page.
                let not_api =
                    name == "mod.rs" && (next.contains("\"/sip\"") || next.contains("\"/call\""));
                assert!(
                    page || doc_route || not_api,
                    "{name}:{}: an undocumented route: {line}",
                    i + 1
                );
            }
        }
        // Each handler annotated is registered (counted in the document).
        let annotated = text.matches("#[utoipa::path(").count();
        let registered = text.matches("async fn ").count();
        assert!(annotated <= registered, "{name}");
    }
    let annotated: usize = ["api.rs", "session.rs", "flows.rs", "live.rs", "metrics.rs"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(src.join(f))
                .unwrap()
                .matches("#[utoipa::path(")
                .count()
        })
        .sum();
    assert_eq!(
        annotated,
        operations(&doc).len(),
        "every annotated handler is in the document"
    );
    // Pages and the document are served too.
    for page in [
        "/wallboard",
        "/agent",
        "/admin",
        "/static/common.js",
        "/static/vaxel.css",
    ] {
        let r = api.get(page, None).await;
        assert_eq!(r.status, StatusCode::OK, "{page}");
        assert!(r.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("script-src 'self'"));
    }
}

#[tokio::test]
async fn read_tokens_see_figures_but_not_customers_and_cannot_change_anything() {
    let mut api = api("roles").await;
    assert_eq!(
        api.get("/api/v1/queues", Some(READ)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        api.get("/api/v1/agents", Some(READ)).await.status,
        StatusCode::OK
    );
    assert_eq!(api.get("/metrics", Some(READ)).await.status, StatusCode::OK);
    assert_eq!(
        api.get("/api/v1/flows", Some(READ)).await.status,
        StatusCode::OK
    );
    for path in [
        "/api/v1/customers/+46701234567",
        "/api/v1/calls",
        "/api/v1/callbacks",
        "/api/v1/calls/active",
        "/api/v1/flows/webbshop",
    ] {
        let r = api.get(path, Some(READ)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    let r = api
        .call(
            Method::PUT,
            "/api/v1/agents/anna/status",
            Some(READ),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(api.acd.try_recv().is_err(), "nothing reached the ACD");
    // A wallboard never sees who calls: the agent's caller is left out.
    api.live.send_replace(Arc::new(Live::new(
        2,
        0,
        vec![queue_live("kundtjanst", 1)],
        vec![anna(Some("+46701234567"))],
    )));
    let r = api.get("/api/v1/agents", Some(READ)).await;
    assert_eq!(r.body[0]["state"], "ringing");
    assert!(r.body[0]["caller"].is_null(), "{:?}", r.body);
    let r = api.get("/api/v1/agents", Some(ADMIN)).await;
    assert_eq!(r.body[0]["caller"]["number"], "+46701234567");
    // An admin changes an agent's status: the ACD is told.
    let r = api
        .call(
            Method::PUT,
            "/api/v1/agents/anna/status",
            Some(ADMIN),
            Some(json!({"status": "on_break"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        api.acd.try_recv().unwrap(),
        AcdEvent::SetStatus {
            agent: "anna".into(),
            status: Status::OnBreak
        }
    );
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let api = api("bad").await;
    let put = |body: Value| {
        api.call(
            Method::PUT,
            "/api/v1/agents/anna/status",
            Some(ADMIN),
            Some(body),
        )
    };
    let r = put(json!({"status": "sleeping"})).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status")),
        "{:?}",
        r.body
    );
    let r = put(json!({"status": "available", "colour": "red"})).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("colour"))
    );
    let r = put(json!({})).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("status"))
    );
    let r = api
        .call(
            Method::PUT,
            "/api/v1/agents/nobody/status",
            Some(ADMIN),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Each bad query or path parameter is named in the answer.
    for (path, field) in [
        ("/api/v1/calls?limit=0", "limit"),
        ("/api/v1/calls?offset=-1", "offset"),
        ("/api/v1/calls?from=yesterday", "from"),
        ("/api/v1/calls?colour=red", "colour"),
        ("/api/v1/calls?caller=%2B46abc", "caller"),
        ("/api/v1/callbacks?status=lost", "status"),
        ("/api/v1/customers/DROP%20TABLE", "number"),
        (
            "/api/v1/queues/kundtjanst?from=2026-12-02&to=2026-12-01",
            "to",
        ),
        ("/api/v1/flows/..%2Fetc/graph", "name"),
    ] {
        let r = api.get(path, Some(ADMIN)).await;
        assert_eq!(
            (r.status, r.body["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{path}: {:?}",
            r.body
        );
    }
    let r = api.get("/api/v1/queues/nosuch", Some(READ)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Not JSON at all.
    let req = Request::put("/api/v1/agents/anna/status")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{status: available"))
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_broken_flow_is_refused_with_file_and_line_and_a_good_one_replaces_the_running_version() {
    let api = api("flows").await;
    let good = std::fs::read_to_string(api.flows_dir.join("webbshop.toml")).unwrap();
    let broken = good.replacen("start = \"greet\"", "start = \"nowhere\"", 1);
    assert_ne!(good, broken);
    let r = api
        .call(
            Method::POST,
            "/api/v1/flows/webbshop/validate",
            Some(ADMIN),
            Some(json!({"source": broken})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["valid"], false);
    let text = r.body["problems"][0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("webbshop.toml:") && text.contains("nowhere"),
        "{text}"
    );
    let r = api
        .call(
            Method::PUT,
            "/api/v1/flows/webbshop",
            Some(ADMIN),
            Some(json!({"source": broken})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["problems"][0]["text"]
        .as_str()
        .unwrap()
        .contains("nowhere"));
    assert_eq!(
        std::fs::read_to_string(api.flows_dir.join("webbshop.toml")).unwrap(),
        good,
        "the file stays"
    );
    let before = api.get("/api/v1/flows", Some(ADMIN)).await.body[0]["version"].clone();

    let edited = good.replacen("description = \"", "description = \"Edited: ", 1);
    let r = api
        .call(
            Method::PUT,
            "/api/v1/flows/webbshop",
            Some(ADMIN),
            Some(json!({"source": edited})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["previous"], before);
    assert_ne!(r.body["version"], before);
    let listed = api.get("/api/v1/flows", Some(ADMIN)).await.body;
    assert!(listed[0]["description"]
        .as_str()
        .unwrap()
        .starts_with("Edited: "));
    let src = api.get("/api/v1/flows/webbshop", Some(ADMIN)).await.body;
    assert_eq!(src["history"][0], before, "the replaced version is kept");
    // Rolled back: the first version runs again.
    let r = api
        .call(
            Method::POST,
            "/api/v1/flows/webbshop/rollback",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["version"], before);
    // The graph: steps and where they lead, from the start.
    let g = api
        .get("/api/v1/flows/webbshop/graph", Some(READ))
        .await
        .body;
    assert_eq!(g["start"], "greet");
    assert_eq!(g["human_key"], "0");
    let edges = g["edges"].as_array().unwrap();
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "main_menu" && e["label"] == "1"),
        "{edges:?}"
    );
}

#[tokio::test]
async fn an_agent_signs_in_with_their_own_credentials_and_sees_who_rings() {
    let mut api = api("agent").await;
    let r = api
        .call(
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"agent": "anna", "password": "wrong"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = api
        .call(
            Method::POST,
            "/api/v1/session",
            None,
            Some(json!({"agent": "anna", "password": "anna-secret"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"role": "agent", "agent": "anna"}));
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    // The customer calling is in the store: the screen pop shows them.
    api.store
        .upsert_customer(
            &vaxel::store::import::CustomerRow {
                number: "+46701234567".into(),
                name: Some("<script>alert(1)</script>".into()),
                language: None,
                tier: Some("gold".into()),
                value: None,
                notes: None,
            },
            jiff::Timestamp::now(),
        )
        .await
        .unwrap();
    api.live.send_replace(Arc::new(Live::new(
        2,
        0,
        vec![queue_live("kundtjanst", 1)],
        vec![anna(Some("+46701234567"))],
    )));
    let me = api.get("/api/v1/me", Some(&session)).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["agent"]["state"], "ringing");
    assert_eq!(
        me.body["customer"]["name"], "<script>alert(1)</script>",
        "names are data, kept as typed"
    );
    assert_eq!(me.body["customer"]["tier"], "gold");
    let r = api
        .call(
            Method::PUT,
            "/api/v1/me/status",
            Some(&session),
            Some(json!({"status": "on_break"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(
        api.acd.try_recv().unwrap(),
        AcdEvent::SetStatus {
            agent: "anna".into(),
            status: Status::OnBreak
        }
    );
    let r = api
        .call(
            Method::POST,
            "/api/v1/me/outcome",
            Some(&session),
            Some(json!({"resolved": true, "note": "Refund sent"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let c = api
        .get("/api/v1/customers/+46701234567", Some(&session))
        .await
        .body;
    assert_eq!(c["outcomes"][0]["note"], "Refund sent");
    assert_eq!(c["outcomes"][0]["resolved"], true);
    // An agent changes only their own status.
    let r = api
        .call(
            Method::PUT,
            "/api/v1/agents/bo/status",
            Some(&session),
            Some(json!({"status": "available"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Signed out: the session is gone.
    let r = api
        .call(Method::DELETE, "/api/v1/session", Some(&session), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        api.get("/api/v1/me", Some(&session)).await.status,
        StatusCode::UNAUTHORIZED
    );
    // Guessing passwords stops after ten tries a minute.
    let mut last = StatusCode::OK;
    for _ in 0..11 {
        last = api
            .call(
                Method::POST,
                "/api/v1/session",
                None,
                Some(json!({"agent": "anna", "password": "guess"})),
            )
            .await
            .status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

fn record(id: &str, caller: &str, at: jiff::Timestamp, outcome: &str, wait_s: u64) -> CallRecord {
    CallRecord {
        call_id: id.into(),
        started: at,
        answered: Some(at),
        ended: at,
        caller: caller.into(),
        dialled: "+46850001000".into(),
        flow: "webbshop".into(),
        flow_version: "x".into(),
        path: vec![],
        outcome: outcome.into(),
        ended_by: "caller".into(),
        queue: Some("kundtjanst".into()),
        agent: (outcome == "answered").then(|| "anna".into()),
        wait_ms: Some(wait_s * 1000),
        talk_ms: (outcome == "answered").then_some(120_000),
        human_key_ms: Some(3000),
        announced_ms: None,
        lookup_ms: None,
        known: false,
        route: None,
        ewt_ms: Some(30_000),
        closed: false,
        to_human_ms: (outcome == "answered").then_some(wait_s * 1000 + 5000),
    }
}

#[tokio::test]
async fn queue_figures_match_the_calls_recorded_today() {
    let api = api("figures").await;
    let now = jiff::Timestamp::now();
    let batch: Vec<StoreRequest> = vec![
        record(
            "a1",
            "+46700000001",
            now - jiff::SignedDuration::from_secs(60),
            "answered",
            10,
        ),
        record("a2", "+46700000002", now, "answered", 30),
        record("a3", "+46700000001", now, "answered", 5),
        record("b1", "+46700000003", now, "abandoned", 45),
        record("b2", "+46700000004", now, "abandoned", 2),
    ]
    .into_iter()
    .map(|r| StoreRequest::RecordCall(Box::new(r)))
    .collect();
    api.store.write_batch(&batch).await.unwrap();
    let r = api.get("/api/v1/queues/kundtjanst", Some(READ)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let d = &r.body["interval"];
    assert_eq!(d["offered"], 5);
    assert_eq!(d["answered"], 3);
    assert_eq!(d["abandoned"], 1);
    assert_eq!(d["short_abandoned"], 1);
    // Answered within 20 s: 2; answered 3 + abandoned after 20 s 1.
    assert_eq!(d["service_level"]["value"], 0.5);
    assert_eq!(d["service_level"]["threshold_s"], 20);
    assert!(d["service_level"]["formula"]
        .as_str()
        .unwrap()
        .contains("answered within T"));
    assert_eq!(d["asa_s"], 15.0);
    assert_eq!(d["aht_s"], 130.0, "talk 120 s + wrap-up 10 s");
    assert_eq!(d["repeat_calls"], 1, "the second call of +46700000001");
    assert_eq!(d["time_to_human"]["calls"], 3);
    assert_eq!(d["ewt_error_s"], 15.0, "(|30-10| + |30-30| + |30-5|) / 3");
    assert_eq!(r.body["live"]["queue"], "kundtjanst");
    let calls = api
        .get("/api/v1/calls?queue=kundtjanst&limit=2", Some(ADMIN))
        .await
        .body;
    assert_eq!(calls.as_array().unwrap().len(), 2, "paged");
    let rest = api
        .get(
            "/api/v1/calls?queue=kundtjanst&limit=10&offset=2",
            Some(ADMIN),
        )
        .await
        .body;
    assert_eq!(rest.as_array().unwrap().len(), 3);
    let mine = api
        .get("/api/v1/calls?caller=%2B46700000001", Some(ADMIN))
        .await
        .body;
    assert_eq!(mine.as_array().unwrap().len(), 2);
    // Erased: nothing is left about the number.
    let r = api
        .call(
            Method::DELETE,
            "/api/v1/customers/+46700000001",
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.body["removed"], 2);
    assert_eq!(
        api.get("/api/v1/customers/+46700000001", Some(ADMIN))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Reads server-sent events until `n` have come, or the deadline.
async fn read_events(body: Body, n: usize, deadline: Duration) -> Vec<(String, Value)> {
    let mut body = body;
    let mut buf = String::new();
    let mut out = Vec::new();
    let end = tokio::time::Instant::now() + deadline;
    while out.len() < n {
        let Ok(Some(Ok(frame))) = tokio::time::timeout_at(end, body.frame()).await else {
            break;
        };
        if let Ok(data) = frame.into_data() {
            buf.push_str(&String::from_utf8_lossy(&data));
        }
        out.extend(common::take_events(&mut buf));
    }
    out
}

#[tokio::test]
async fn the_event_stream_starts_with_a_snapshot_then_sends_what_changed() {
    let api = api("events").await;
    let req = Request::get("/api/v1/events?access_token=".to_string() + READ)
        .header("Last-Event-ID", "41")
        .body(Body::empty())
        .unwrap();
    let resp = api.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "text/event-stream");
    let body = resp.into_body();
    let live = api.live.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        live.send_replace(Arc::new(Live::new(
            2,
            0,
            vec![queue_live("kundtjanst", 3), queue_live("order", 0)],
            vec![anna(Some("+46701234567"))],
        )));
    });
    let evs = read_events(body, 3, Duration::from_secs(10)).await;
    assert_eq!(evs[0].0, "snapshot");
    assert_eq!(evs[0].1["queues"].as_array().unwrap().len(), 2);
    // Only what changed: kundtjanst (order did not), and the agent, without
    // the caller for a read token.
    assert_eq!(evs[1].0, "queue");
    assert_eq!(evs[1].1["queue"], "kundtjanst");
    assert_eq!(evs[1].1["waiting"], 3);
    assert_eq!(evs[2].0, "agent");
    assert_eq!(evs[2].1["state"], "ringing");
    assert!(evs[2].1["caller"].is_null());
    // An admin token is not taken from the query string (it would end up in logs).
    let r = api
        .get(&format!("/api/v1/events?access_token={ADMIN}"), None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn cors_lets_only_the_configured_origins_read_the_api() {
    let api = api_with_cors("cors", &["https://wall.example.se".to_string()]).await;
    let preflight = |origin: &str| {
        Request::builder()
            .method(Method::OPTIONS)
            .uri("/api/v1/queues")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
            .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization")
            .body(Body::empty())
            .unwrap()
    };
    let ok = api
        .app
        .clone()
        .oneshot(preflight("https://wall.example.se"))
        .await
        .unwrap();
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://wall.example.se"
    );
    let other = api
        .app
        .clone()
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(!other
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    // Without configured origins, no page elsewhere may read the API.
    let plain = api_with_cors("cors-none", &[]).await;
    let r = plain
        .app
        .clone()
        .oneshot(preflight("https://wall.example.se"))
        .await
        .unwrap();
    assert!(!r
        .headers()
        .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
}
