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

/// `?limit=&starting_after=` as every list route takes them; a route with
/// filters flattens it into its own parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PageParams {
    /// How many objects to return, 1 to 100 (10 by default).
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    #[serde(default, deserialize_with = "number_or_numeral")]
    pub limit: Option<i64>,
    /// The id of the last object of the previous page; empty means none.
    pub starting_after: Option<String>,
}

/// A query string holds only text, and serde hands a flattened field the
/// text as it is: parse a numeral here, so that `limit=5` reads the same
/// whether `PageParams` stands alone or inside a route's parameters.
fn number_or_numeral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrNumeral {
        Number(i64),
        Numeral(String),
    }
    match Option::<NumberOrNumeral>::deserialize(deserializer)? {
        None => Ok(None),
        Some(NumberOrNumeral::Number(n)) => Ok(Some(n)),
        Some(NumberOrNumeral::Numeral(text)) => text
            .trim()
            .parse()
            .map(Some)
            // No field name: the query extractor prefixes the field's path
            // where it knows it, and a flattened field's value has no other.
            .map_err(|_| serde::de::Error::custom(format!("{text:?} is not a whole number"))),
    }
}

pub const DEFAULT_PAGE_LIMIT: i64 = 10;
pub const MAX_PAGE_LIMIT: i64 = 100;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::payments::{EventFilter, ListEventsParams, ListPaymentsParams, PaymentFilter};

    #[test]
    fn a_page_reads_the_same_alone_and_flattened_into_a_route_s_parameters() {
        let page: PageParams = serde_urlencoded::from_str("limit=5&starting_after=pay_1").expect("a page");
        assert_eq!(
            page,
            PageParams {
                limit: Some(5),
                starting_after: Some("pay_1".into()),
            }
        );
        let payments: ListPaymentsParams =
            serde_urlencoded::from_str("limit=5&starting_after=pay_1&status=succeeded").expect("payments");
        assert_eq!(payments.page, page);
        assert_eq!(
            payments.filter,
            PaymentFilter {
                status: Some("succeeded".into())
            }
        );
        let events: ListEventsParams =
            serde_urlencoded::from_str("type=payment.created&limit=1").expect("events");
        assert_eq!(events.page.limit, Some(1));
        assert_eq!(
            events.filter,
            EventFilter {
                kind: Some("payment.created".into())
            }
        );
        let none: ListEventsParams = serde_urlencoded::from_str("").expect("no parameters");
        assert_eq!(none, ListEventsParams::default());
    }

    #[test]
    fn a_limit_that_is_not_a_whole_number_is_refused() {
        for bad in ["limit=ten", "limit=1.5", "limit=", "limit=99999999999999999999"] {
            let parsed = serde_urlencoded::from_str::<ListPaymentsParams>(bad);
            assert!(parsed.is_err(), "{bad}: {parsed:?}");
        }
        let json: PageParams = serde_json::from_str(r#"{"limit": 7}"#).expect("a number in JSON");
        assert_eq!(json.limit, Some(7));
    }
}
