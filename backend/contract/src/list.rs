use serde::{Deserialize, Serialize};

/// A cursor-paginated page: `{object: "list", data, has_more}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub object: ListObject,
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ListObject {
    #[default]
    List,
}

impl<T> List<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says there is more.
    pub fn from_overfetched(mut rows: Vec<T>, limit: usize) -> Self {
        let has_more = rows.len() > limit;
        rows.truncate(limit);
        Self {
            object: ListObject::List,
            data: rows,
            has_more,
        }
    }
}

/// `?limit=&starting_after=` as every list route takes them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
pub struct PageParams {
    /// How many objects to return, 1 to 100 (10 by default).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<i64>,
    /// The id of the last object of the previous page; empty means none.
    pub starting_after: Option<String>,
}

pub const DEFAULT_PAGE_LIMIT: i64 = 10;
pub const MAX_PAGE_LIMIT: i64 = 100;

impl PageParams {
    /// The page size, or the offending value when it is outside 1..=100.
    pub fn limit(&self) -> Result<i64, i64> {
        match self.limit {
            None => Ok(DEFAULT_PAGE_LIMIT),
            Some(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(n),
        }
    }
}
