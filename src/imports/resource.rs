//! What an import writes: the one word the import area and its mappings share.

crate::text_enum! {
    /// What an import writes: `customers`, `interactions`, `purchases` or `contacts` (links
    /// of people to organizations, each side named by external id or email; `insert` only).
    pub enum Resource {
        Customers = "customers",
        Interactions = "interactions",
        Purchases = "purchases",
        Contacts = "contacts",
    }
}
