//! Pages of one list read branch by branch, each in the list's order, and merged.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::BigInt;

/// `(branch) UNION ALL (branch) … ORDER BY order LIMIT limit`: the first `limit` rows, in
/// `order`, of branches that each read at most a page in that order.
///
/// For a filter on several values of the column that leads the list's index: PostgreSQL 15
/// reads `column = ANY(…)` in no index's order, so the list would read every row of those
/// values to sort them. One branch per value is one index range each, and the merge sorts at
/// most a page per value. `order` names the branches' output columns (`created_at, id`, …).
pub struct MergedPages<Q> {
    pub branches: Vec<Q>,
    pub order: &'static str,
    pub limit: i64,
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for MergedPages<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        for (i, branch) in self.branches.iter().enumerate() {
            if i > 0 {
                out.push_sql(" UNION ALL ");
            }
            out.push_sql("(");
            branch.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        out.push_sql(" ORDER BY ");
        out.push_sql(self.order);
        out.push_sql(" LIMIT ");
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        Ok(())
    }
}

impl<Q> QueryId for MergedPages<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for MergedPages<Q> {
    type SqlType = Q::SqlType;
}
