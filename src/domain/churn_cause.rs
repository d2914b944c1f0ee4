//! Why a customer was lost, or what a complaint was about: one list for both, so that a
//! complaint's cause and a lost customer's reason can be counted side by side (DOMAIN.md,
//! lost customers: find why they drifted away).

crate::text_enum! {
    /// Why a customer was lost (a move into `dissolution` or `churned`), or what a complaint
    /// was about: `service_quality`, `product_defect`, `communication`, `price`,
    /// `competitor`, `moved_away`, `other`.
    pub enum ChurnCause {
        ServiceQuality = "service_quality",
        ProductDefect = "product_defect",
        Communication = "communication",
        Price = "price",
        Competitor = "competitor",
        MovedAway = "moved_away",
        Other = "other",
    }
}
