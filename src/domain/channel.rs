crate::text_enum! {
    /// A way of being in contact (DOMAIN.md section 3).
    pub enum Channel {
        Phone = "phone",
        Sms = "sms",
        Email = "email",
        Visit = "visit",
        InStore = "in_store",
        Web = "web",
        Chat = "chat",
        Social = "social",
        Mail = "mail",
        Other = "other",
    }
}
