//! The end-to-end harness: the whole stack on ephemeral ports, with fresh
//! databases and its own Redis namespace, torn down when the test ends.

use platform::Config;
use platform::testing::{ServiceDatabase, TestDatabase};
use tokio_util::sync::CancellationToken;

use crate::Stack;

pub struct TestStack {
    pub stack: Stack,
    pub config: Config,
    shutdown: CancellationToken,
    _databases: [TestDatabase; 3],
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test configuration after `adjust` has changed it.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = platform::testing::config();
        let databases = ServiceDatabase::ALL.map(|service| service.reserve(&mut config));
        adjust(&mut config);
        let shutdown = CancellationToken::new();
        let stack = Stack::start(config.clone(), shutdown.clone())
            .await
            .expect("the stack starts");
        Self {
            stack,
            config,
            shutdown,
            _databases: databases,
        }
    }

    /// Starts the graceful shutdown that Ctrl-C or SIGTERM would.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
    }

    pub fn gateway_url(&self) -> String {
        format!("http://{}", self.stack.gateway)
    }
}

impl Drop for TestStack {
    fn drop(&mut self) {
        // Stop the servers before the databases under them are dropped.
        self.shutdown.cancel();
    }
}
