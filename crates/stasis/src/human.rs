//! What `stasis ps` adds to docker's words ([`api::human`]): a paused
//! container's lease, a running one's health.

use sandbox::ContainerStatus;

pub use api::human::{ago, now, status};

/// A paused container's STATUS with its lease: `Up 2 minutes (Paused, lease 28s)`.
pub fn status_with_lease(status: String, lease: Option<String>) -> String {
    match lease {
        Some(l) if status.ends_with(" (Paused)") => {
            format!("{}, {l})", status.trim_end_matches(')'))
        }
        _ => status,
    }
}

/// A running container's STATUS with its health, as docker words it:
/// `Up 2 minutes (healthy)`, `Up 3 seconds (health: starting)`. A paused
/// one says only that it is paused, as docker's does.
pub fn status_with_health(
    status: String,
    state: ContainerStatus,
    health: Option<sandbox::HealthStatus>,
) -> String {
    match (state, health) {
        (ContainerStatus::Running, Some(sandbox::HealthStatus::Starting)) => {
            format!("{status} (health: starting)")
        }
        (ContainerStatus::Running, Some(h)) => format!("{status} ({})", h.word()),
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_shows_inside_the_paused_status() {
        let up = || "Up 2 minutes (Paused)".to_owned();
        assert_eq!(
            status_with_lease(up(), Some("lease 28s".into())),
            "Up 2 minutes (Paused, lease 28s)"
        );
        assert_eq!(status_with_lease(up(), None), up());
        let running = "Up 2 minutes".to_owned();
        assert_eq!(
            status_with_lease(running.clone(), Some("lease 1s".into())),
            running
        );
    }

    #[test]
    fn health_shows_while_running_only() {
        use sandbox::HealthStatus as H;
        let st = |state, h| status_with_health("Up 2 minutes".into(), state, h);
        assert_eq!(
            st(ContainerStatus::Running, Some(H::Healthy)),
            "Up 2 minutes (healthy)"
        );
        assert_eq!(
            st(ContainerStatus::Running, Some(H::Unhealthy)),
            "Up 2 minutes (unhealthy)"
        );
        assert_eq!(
            st(ContainerStatus::Running, Some(H::Starting)),
            "Up 2 minutes (health: starting)"
        );
        assert_eq!(st(ContainerStatus::Running, None), "Up 2 minutes");
        assert_eq!(
            st(ContainerStatus::Paused, Some(H::Healthy)),
            "Up 2 minutes"
        );
    }
}
