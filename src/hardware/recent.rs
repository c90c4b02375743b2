//! The last few minutes of live figures, kept by the core so that a window opened now shows
//! the charts' history at once rather than starting from a single point.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{GpuLive, Sample};

/// Points kept: ten minutes at the default five-second metrics interval.
pub const KEEP: usize = 120;

/// The figures of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// When it was taken (Unix ms).
    pub at_ms: i64,
    /// CPU load, percent; `None` when the machine could not be read.
    pub cpu_percent: Option<f32>,
    /// GPU index → its figures.
    pub gpus: Vec<(u32, GpuLive)>,
}

/// A bounded history, written by the agent task and read by whoever shows it.
#[derive(Debug, Clone, Default)]
pub struct Recent(Arc<Mutex<VecDeque<Point>>>);

impl Recent {
    /// Adds a sample taken at `at_ms`; a failed one is a gap in the charts.
    pub fn push(&self, at_ms: i64, sample: &Sample) {
        let point = Point {
            at_ms,
            cpu_percent: sample.failed.is_none().then_some(sample.usage.cpu_percent),
            gpus: sample.gpus.clone(),
        };
        let mut points = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if points.len() == KEEP {
            points.pop_front();
        }
        points.push_back(point);
    }

    /// The points kept, oldest first.
    pub fn points(&self) -> Vec<Point> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_points_in_order_with_failures_as_gaps() {
        let r = Recent::default();
        for i in 0..(KEEP as i64 + 5) {
            let mut s = Sample::default();
            s.usage.cpu_percent = i as f32;
            r.push(i, &s);
        }
        r.push(1000, &Sample::failed("gone".into()));
        let p = r.points();
        assert_eq!(p.len(), KEEP);
        assert_eq!(p[0].at_ms, 6, "the oldest were dropped");
        assert_eq!(p[KEEP - 2].cpu_percent, Some((KEEP + 4) as f32));
        assert_eq!(p[KEEP - 1].cpu_percent, None);
    }
}
