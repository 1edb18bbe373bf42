//! [`Loader`]: the store as a [`Sink`] that sources (`kaudit import`) write into directly: events
//! are collected into a [`Batch`] and appended (one write, one fsync) at each commit; or, for
//! input that can be read again, loaded in bulk one by one (see [`Store::begin_bulk`]).

use kaudit_model::Event;
use kaudit_model::sink::{Appended, Sink};

use crate::batch::Batch;
use crate::store::{Incoming, Store};

/// A [`Sink`] over a store open in this process, for one cluster.
pub struct Loader<'s> {
    store: &'s mut Store,
    cluster: String,
    batch: Batch,
    /// Loading in bulk: the events pushed since the last commit, and what became of them.
    bulk: Option<(usize, Appended)>,
    /// The time of receipt of bulk-loaded events, moved on at each commit as a batch's is.
    received: i64,
}

impl<'s> Loader<'s> {
    /// Events pushed are stored under `cluster`.
    pub fn new(store: &'s mut Store, cluster: &str) -> Loader<'s> {
        Loader {
            store,
            cluster: cluster.to_string(),
            batch: Batch::new(cluster, 0),
            bulk: None,
            received: kaudit_model::now_micros(),
        }
    }

    /// The store written to.
    pub fn store(&mut self) -> &mut Store {
        self.store
    }
}

impl Sink for Loader<'_> {
    fn max_event(&self) -> usize {
        crate::max_event(&self.cluster)
    }

    fn rereadable(&mut self) -> Result<(), String> {
        self.store.begin_bulk().map_err(|e| e.to_string())?;
        self.bulk = Some((0, Appended::default()));
        Ok(())
    }

    fn push(&mut self, raw: &str, event: &Event<'_>) -> Result<(), String> {
        let Some((pending, done)) = self.bulk.as_mut() else {
            self.batch.push(raw, event);
            return Ok(());
        };
        let inc = Incoming::new(self.received, &self.cluster, raw, event);
        let stored = self.store.push_bulk(&inc).map_err(|e| e.to_string())?;
        *pending += 1;
        if stored {
            done.stored += 1;
        } else {
            done.duplicates += 1;
        }
        Ok(())
    }

    fn pending(&self) -> usize {
        match &self.bulk {
            Some((n, _)) => *n,
            None => self.batch.len(),
        }
    }

    fn commit(&mut self) -> Result<Appended, String> {
        self.received = kaudit_model::now_micros();
        if let Some((pending, done)) = self.bulk.as_mut() {
            *pending = 0;
            return Ok(std::mem::take(done));
        }
        if self.batch.is_empty() {
            return Ok(Appended::default());
        }
        self.batch.received = self.received;
        let r = self.store.append(&self.batch.incoming());
        self.batch.clear();
        r.map_err(|e| e.to_string())
    }
}
