//! The end-to-end harness: the whole stack on ephemeral ports, with fresh
//! databases and its own Redis namespace, torn down when the test ends.

use platform::testing::{ServiceDatabase, TestDatabase, TestEnv};
use tokio_util::sync::CancellationToken;

use crate::{Stack, StackSettings};

pub struct TestStack {
    pub stack: Stack,
    pub config: StackSettings,
    shutdown: CancellationToken,
    _databases: [TestDatabase; 3],
}

impl TestStack {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the test configuration after `adjust` has changed it.
    pub async fn start_with(adjust: impl FnOnce(&mut StackSettings)) -> Self {
        Self::start_in(TestEnv::new(), adjust).await
    }

    /// Starts with what the services read from `env`, after `adjust`: for a
    /// setting every service reads, such as `REDIS_URL`.
    pub async fn start_in(env: TestEnv, adjust: impl FnOnce(&mut StackSettings)) -> Self {
        let mut env = env;
        let databases = ServiceDatabase::ALL.map(|service| {
            let (with_db, db) = service.reserve(env.clone());
            env = with_db;
            db
        });
        // One environment for all four, so that they share its Redis namespace.
        let mut config =
            StackSettings::from_lookup(&|name| env.get(name)).expect("the test configuration is valid");
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
