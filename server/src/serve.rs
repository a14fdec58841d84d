//! `sealpost serve`: open the data directory, clean up after a crash (stale uploads, the
//! outbox's temporary files), refuse a file outbox that real recipients' mail would land in,
//! bind every listener, print the `listening` lines (the output contract in [`crate::cli`]),
//! and run HTTP, SMTP (and SMTPS) and the periodic jobs until SIGTERM or Ctrl-C; a listener
//! that fails stops the others too.

use std::io::Write;

use anyhow::Context;

use crate::app::App;
use crate::config::{Config, Outbound};
use crate::{jobs, notify, smtp, web};

/// Run the server until a shutdown signal, then let in-flight work finish.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(config).await?;
    // No listener runs yet, so every message still `receiving` lost its writer in a crash.
    let removed = crate::messages::cleanup_stale(app.store(), 0).await?;
    if removed > 0 {
        tracing::warn!(
            count = removed,
            "removed messages whose upload was cut off by a restart"
        );
    }
    let http_addr = app.config().http_addr;
    let listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("cannot listen on {http_addr}"))?;
    let bound = listener.local_addr()?;
    let scheme = match web::check_listener_policy(bound, app.config())? {
        web::Scheme::Http => "http",
        web::Scheme::Https => "https",
    };
    if let Outbound::File = app.config().outbound {
        open_outbox(app.config())?;
    }
    // SMTP: STARTTLS certificate (generated on first run) and listeners, bound before the
    // `listening` lines so that a client reading them can connect at once.
    let (acceptor, _fingerprint) = crate::tls::smtp_acceptor(app.config())?;
    let smtp_addr = app.config().smtp_addr;
    let smtp_listener = tokio::net::TcpListener::bind(smtp_addr)
        .await
        .with_context(|| format!("cannot listen on {smtp_addr} (SMTP)"))?;
    let smtps_listener = match app.config().smtps_addr {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (SMTPS)"))?,
        ),
        None => None,
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {scheme}={bound}")?;
        writeln!(out, "listening smtp={}", smtp_listener.local_addr()?)?;
        if let Some(l) = &smtps_listener {
            writeln!(out, "listening smtps={}", l.local_addr()?)?;
        }
        out.flush()?;
    }
    let jobs = tokio::spawn(jobs::run_periodic(
        app.state().clone(),
        jobs::period(app.config()),
    ));
    let refusals = tokio::spawn(jobs::run_refusal_flush(
        app.store().clone(),
        app.state().throttle.clone(),
    ));
    // One signal stops every listener; a listener that fails stops the others too.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        rx.wait_for(|s| *s).await.ok();
    };
    let signal = {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            stop.send_replace(true);
        })
    };
    let smtp_server = smtp::SmtpServer::new(app.state().clone(), Some(acceptor));
    let (http, smtp_result, smtps_result) = tokio::join!(
        async {
            let r = app
                .serve_http(listener, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
        async {
            let r = smtp_server
                .serve(smtp_listener, false, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
        async {
            let Some(l) = smtps_listener else {
                return Ok(());
            };
            let r = smtp_server
                .serve(l, true, until_stopped(stopped.clone()))
                .await;
            stop.send_replace(true);
            r
        },
    );
    signal.abort();
    jobs.abort();
    refusals.abort();
    if let Err(e) = jobs::flush_refusals(app.store(), &app.state().throttle, true).await {
        tracing::error!(error = %e, "could not audit counted refusals at shutdown");
    }
    app.store().close().await;
    http.and(smtp_result).and(smtps_result)
}

/// Refuse the file outbox where real recipients' mail would land in it, say loudly that it
/// keeps secrets on disk, and clean up after a crash: all before any listener runs.
fn open_outbox(config: &Config) -> anyhow::Result<()> {
    notify::outbox::check_policy(config)?;
    let dir = config.outbox_dir();
    tracing::warn!(
        outbox = %dir.display(),
        retention_hours = config.outbound_file_retention_hours,
        "outbound = file, for development only: every link secret and one-time code is \
         written in clear to the outbox; set outbound to the organisation's relay \
         (SEALPOST_OUTBOUND=smtp://host:port) for real recipients"
    );
    let prepared = notify::outbox::prepare(&dir)
        .with_context(|| format!("cannot prepare the outbox {}", dir.display()))?;
    if prepared.removed_temporary > 0 {
        tracing::warn!(
            count = prepared.removed_temporary,
            "removed outbox files whose writing was cut off by a restart"
        );
    }
    if prepared.restricted > 0 {
        tracing::warn!(
            count = prepared.restricted,
            "outbox files were readable by other users; restricted them to the owner"
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
