// @generated automatically by Diesel CLI.

diesel::table! {
    analytics_kept_lines (slot, ranking, rank) {
        slot -> Int2,
        ranking -> Int2,
        rank -> Int8,
        customer_id -> Uuid,
        value -> Int8,
        purchases -> Int8,
        cumulative -> Int8,
    }
}

diesel::table! {
    analytics_kept_rankings (slot, ranking) {
        slot -> Int2,
        ranking -> Int2,
        measure -> Text,
        grouped -> Bool,
        currency -> Text,
        period_from -> Date,
        period_to -> Date,
        computed_at -> Timestamptz,
        customers -> Int8,
        total -> Int8,
        band_values -> Array<Nullable<Int8>>,
        sales_customers -> Array<Nullable<Int8>>,
        top_sales_ranks -> Array<Nullable<Int8>>,
    }
}

diesel::table! {
    analytics_kept_segments (slot, grouped, dimension, key) {
        slot -> Int2,
        grouped -> Bool,
        computed_at -> Timestamptz,
        dimension -> Text,
        key -> Text,
        customers -> Int8,
        value -> Int8,
        mean_value -> Int8,
        nps_respondents -> Int8,
        mean_nps -> Nullable<Float8>,
        nps -> Nullable<Float8>,
        csat_respondents -> Int8,
        mean_csat -> Nullable<Float8>,
        csat -> Nullable<Float8>,
        at_risk -> Int8,
        year_value -> Nullable<Int8>,
        window_sales -> Int8,
    }
}

diesel::table! {
    analytics_settings (id) {
        id -> Bool,
        currency -> Text,
        measure -> Text,
        window_days -> Int4,
        key_percent -> Int4,
        development_percent -> Int4,
        maintenance_percent -> Int4,
        high_value_percent -> Int4,
        churn_threshold -> Int4,
        contact_days -> Int4,
        move_to_dissolution -> Bool,
        computed_at -> Nullable<Timestamptz>,
        computed_with -> Nullable<Jsonb>,
        computed_customers -> Nullable<Int8>,
        computed_ms -> Nullable<Int8>,
        updated_at -> Timestamptz,
        version -> Int8,
        retention_rate -> Nullable<Float8>,
        discount_rate -> Float8,
        influential_referrals -> Int4,
        few_customers_percent -> Int4,
        medium_customers_percent -> Int4,
        low_margin_percent -> Int4,
        high_margin_percent -> Int4,
        callback_days_accountable -> Nullable<Int4>,
        callback_days_proactive -> Nullable<Int4>,
        callback_days_partnership -> Nullable<Int4>,
        loyalty_periods -> Int4,
        loyalty_period_days -> Int4,
        loyal_percent -> Int4,
        computed_all_sales -> Nullable<Int8>,
        computed_last_year_buyers -> Nullable<Int8>,
        computed_retained -> Nullable<Int8>,
    }
}

diesel::table! {
    api_clients (id) {
        id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        secret_hash -> Bytea,
        scopes -> Array<Nullable<Text>>,
        created_by -> Text,
        revoked_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        credentials_version -> Int8,
        rate_limit -> Nullable<Text>,
    }
}

diesel::table! {
    app_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        occurred_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
        action -> Text,
        entity_type -> Text,
        entity_id -> Text,
        changes -> Jsonb,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    complaint_status_changes (id) {
        id -> Uuid,
        interaction_id -> Uuid,
        from_status -> Nullable<Text>,
        to_status -> Text,
        changed_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    contacts (id) {
        id -> Uuid,
        organization_id -> Uuid,
        person_id -> Uuid,
        title -> Nullable<Text>,
        buying_roles -> Array<Nullable<Text>>,
        is_primary -> Bool,
        started_at -> Timestamptz,
        ended_at -> Nullable<Timestamptz>,
        note -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    customer_analytics (customer_id) {
        customer_id -> Uuid,
        value -> Int8,
        purchases -> Int4,
        purchases_recent -> Int4,
        purchases_earlier -> Int4,
        value_tier -> Text,
        future_value -> Int8,
        value_class -> Text,
        last_purchase_at -> Nullable<Timestamptz>,
        recency_score -> Nullable<Int2>,
        frequency_score -> Nullable<Int2>,
        monetary_score -> Nullable<Int2>,
        churn_score -> Int2,
        churn_reasons -> Array<Text>,
        mean_interval_days -> Nullable<Float8>,
        expected_recent -> Nullable<Float8>,
        last_contact_at -> Nullable<Timestamptz>,
        open_complaints -> Int4,
        latest_nps -> Nullable<Int2>,
        latest_csat -> Nullable<Int2>,
        at_risk_since -> Nullable<Timestamptz>,
        year_value -> Nullable<Int8>,
        window_sales -> Int8,
        margin_percent -> Nullable<Float8>,
        recommended_relationship_level -> Nullable<Text>,
        relationship_below_recommended -> Bool,
        loyalty_periods_bought -> Int4,
        loyalty_quadrant -> Text,
    }
}

diesel::table! {
    customer_attribute_answers (customer_id, question_key) {
        customer_id -> Uuid,
        question_key -> Text,
        response_id -> Uuid,
        submitted_at -> Timestamptz,
        expectation -> Int2,
        performance -> Int2,
    }
}

diesel::table! {
    customer_lifecycle_events (id) {
        id -> Uuid,
        customer_id -> Uuid,
        from_stage -> Nullable<Text>,
        to_stage -> Text,
        changed_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
        reason -> Nullable<Text>,
        reason_code -> Nullable<Text>,
    }
}

diesel::table! {
    customer_merge_moves (merge_id, kind, row_id, from_id) {
        merge_id -> Uuid,
        kind -> Text,
        row_id -> Uuid,
        from_id -> Uuid,
        points -> Nullable<Int8>,
    }
}

diesel::table! {
    customer_merges (id) {
        id -> Uuid,
        survivor_id -> Uuid,
        merged_ids -> Array<Nullable<Uuid>>,
        before -> Jsonb,
        survivor_derived -> Jsonb,
        opened_account -> Bool,
        survivor_version -> Int8,
        report -> Jsonb,
        merged_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
        unmerged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    customer_not_duplicates (customer_a, customer_b) {
        customer_a -> Uuid,
        customer_b -> Uuid,
        marked_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
    }
}

diesel::table! {
    customer_satisfaction (customer_id) {
        customer_id -> Uuid,
        nps -> Nullable<Int2>,
        nps_at -> Nullable<Timestamptz>,
        csat -> Nullable<Int2>,
        csat_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    customer_search_words (word, customer_id) {
        word -> Text,
        customer_id -> Uuid,
    }
}

diesel::table! {
    customer_tags (customer_id, tag) {
        customer_id -> Uuid,
        tag -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        name_key -> Text,
    }
}

diesel::table! {
    customer_tombstones (customer_id) {
        customer_id -> Uuid,
        survivor_id -> Uuid,
        merge_id -> Uuid,
    }
}

// customers.search_words (text[], generated from the name, organisation name and email),
// email_key and address_key (the duplicate rules' keys, generated) are left out: only
// hand-written SQL reads them. (diesel is built with `64-column-tables`.)
diesel::table! {
    customers (id) {
        id -> Uuid,
        kind -> Text,
        name -> Text,
        organization_name -> Nullable<Text>,
        email -> Nullable<Text>,
        phone -> Nullable<Text>,
        address -> Nullable<Jsonb>,
        region_type -> Nullable<Text>,
        birth_date -> Nullable<Date>,
        gender -> Nullable<Text>,
        occupation -> Nullable<Text>,
        income_band -> Nullable<Text>,
        national_id -> Nullable<Text>,
        preferred_channel -> Nullable<Text>,
        consent_email -> Bool,
        consent_email_at -> Nullable<Timestamptz>,
        consent_sms -> Bool,
        consent_sms_at -> Nullable<Timestamptz>,
        tags -> Array<Nullable<Text>>,
        attributes -> Jsonb,
        source -> Nullable<Text>,
        external_id -> Nullable<Text>,
        account_manager_id -> Nullable<Uuid>,
        lifecycle_stage -> Text,
        relationship_level -> Text,
        qualification -> Nullable<Jsonb>,
        prospect_grade -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        deleted_at -> Nullable<Timestamptz>,
        erased_at -> Nullable<Timestamptz>,
        parent_id -> Nullable<Uuid>,
        referred_by_id -> Nullable<Uuid>,
        influential -> Bool,
        credit -> Nullable<Jsonb>,
        buyer_type -> Nullable<Text>,
        organization_type -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (owner, key) {
        owner -> Text,
        key -> Text,
        request_hash -> Bytea,
        state -> Text,
        response_status -> Nullable<Int2>,
        response_headers -> Nullable<Jsonb>,
        response_body -> Nullable<Bytea>,
        created_at -> Timestamptz,
        locked_at -> Timestamptz,
        lease_until -> Timestamptz,
        lease_holder -> Nullable<Uuid>,
    }
}

diesel::table! {
    import_chunks (import_id, seq) {
        import_id -> Uuid,
        seq -> Int4,
        data -> Bytea,
    }
}

diesel::table! {
    /// `position` and `txid` are read by SQL only (`events::store`).
    events (id) {
        id -> Uuid,
        #[sql_name = "type"]
        type_ -> Text,
        occurred_at -> Timestamptz,
        object_type -> Text,
        object_id -> Text,
        data -> Jsonb,
        previous -> Nullable<Jsonb>,
        request_id -> Nullable<Text>,
    }
}

diesel::table! {
    import_error_rows (import_id, line) {
        import_id -> Uuid,
        line -> Int8,
        raw -> Text,
    }
}

diesel::table! {
    imports (id) {
        id -> Uuid,
        resource -> Text,
        mode -> Text,
        format -> Text,
        dry_run -> Bool,
        all_or_nothing -> Bool,
        background -> Bool,
        state -> Text,
        content_hash -> Nullable<Bytea>,
        bytes -> Int8,
        header -> Nullable<Text>,
        received -> Int8,
        created -> Int8,
        updated -> Int8,
        unchanged -> Int8,
        failed -> Int8,
        lines_done -> Int8,
        committed -> Bool,
        error -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        actor_type -> Text,
        actor_id -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        attempts -> Int4,
        last_error -> Nullable<Text>,
        errors_total -> Int8,
        mapping -> Nullable<Jsonb>,
        unmapped_columns -> Nullable<Array<Text>>,
        on_duplicate -> Nullable<Text>,
    }
}

diesel::table! {
    import_mapping_versions (mapping_id, version) {
        mapping_id -> Uuid,
        version -> Int8,
        name -> Text,
        description -> Nullable<Text>,
        spec -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    import_mappings (id) {
        id -> Uuid,
        name -> Text,
        resource -> Text,
        description -> Nullable<Text>,
        spec -> Jsonb,
        version -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    interactions (id) {
        id -> Uuid,
        customer_id -> Uuid,
        channel -> Text,
        direction -> Text,
        kind -> Text,
        subject -> Nullable<Text>,
        notes -> Nullable<Text>,
        occurred_at -> Nullable<Timestamptz>,
        duration_seconds -> Nullable<Int4>,
        staff_id -> Nullable<Uuid>,
        outcome -> Nullable<Text>,
        due_at -> Nullable<Timestamptz>,
        severity -> Nullable<Text>,
        severity_rank -> Nullable<Int2>,
        status -> Nullable<Text>,
        resolution -> Nullable<Text>,
        in_progress_at -> Nullable<Timestamptz>,
        resolved_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        reopened_at -> Nullable<Timestamptz>,
        reopen_count -> Int4,
        assignee_id -> Nullable<Uuid>,
        timeline_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        deleted_at -> Nullable<Timestamptz>,
        purchase_id -> Nullable<Uuid>,
        contact_id -> Nullable<Uuid>,
        cause -> Nullable<Text>,
    }
}

diesel::table! {
    loyalty_accounts (customer_id) {
        customer_id -> Uuid,
        balance -> Int8,
        tier_key -> Nullable<Text>,
        tier_since -> Nullable<Timestamptz>,
        below_since -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_ledger (id) {
        id -> Uuid,
        seq -> Int8,
        customer_id -> Uuid,
        posting_id -> Uuid,
        kind -> Text,
        points -> Int8,
        lot_id -> Uuid,
        expires_at -> Nullable<Timestamptz>,
        purchase_id -> Nullable<Uuid>,
        qualifying_at -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
        occurred_at -> Timestamptz,
        created_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
    }
}

diesel::table! {
    loyalty_lots (id) {
        id -> Uuid,
        customer_id -> Uuid,
        earned_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        points -> Int8,
        remaining -> Int8,
    }
}

diesel::table! {
    loyalty_program (id) {
        id -> Bool,
        currency -> Text,
        earn_points -> Int4,
        earn_per_amount -> Int8,
        rounding -> Text,
        expiry -> Text,
        expiry_days -> Nullable<Int4>,
        qualification_basis -> Text,
        qualification_months -> Int4,
        downgrade -> Text,
        grace_days -> Nullable<Int4>,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    loyalty_tier_changes (id) {
        id -> Uuid,
        customer_id -> Uuid,
        from_tier -> Nullable<Text>,
        to_tier -> Nullable<Text>,
        direction -> Text,
        reason -> Text,
        basis -> Text,
        qualifying -> Int8,
        threshold -> Nullable<Int8>,
        window_from -> Timestamptz,
        window_to -> Timestamptz,
        changed_at -> Timestamptz,
        config_version -> Int8,
    }
}

diesel::table! {
    loyalty_tiers (key) {
        key -> Text,
        name -> Text,
        position -> Int4,
        threshold -> Int8,
        multiplier_percent -> Int4,
        benefits -> Array<Nullable<Text>>,
    }
}

diesel::table! {
    opportunities (id) {
        id -> Uuid,
        customer_id -> Uuid,
        title -> Text,
        amount -> Int8,
        currency -> Text,
        stage -> Text,
        owner_id -> Uuid,
        expected_close_date -> Date,
        status -> Text,
        close_reason -> Nullable<Text>,
        closed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        deleted_at -> Nullable<Timestamptz>,
        contact_ids -> Array<Nullable<Uuid>>,
        last_advance_at -> Nullable<Timestamptz>,
        last_progress_at -> Timestamptz,
        has_decision_maker -> Bool,
    }
}

diesel::table! {
    opportunity_advances (id) {
        id -> Uuid,
        opportunity_id -> Uuid,
        kind -> Text,
        occurred_at -> Timestamptz,
        note -> Nullable<Text>,
        actor_type -> Text,
        actor_id -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    opportunity_stage_changes (id) {
        id -> Uuid,
        opportunity_id -> Uuid,
        from_stage -> Nullable<Text>,
        to_stage -> Text,
        from_status -> Nullable<Text>,
        to_status -> Text,
        changed_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    pipeline_settings (id) {
        id -> Bool,
        credit_required_after -> Nullable<Text>,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    pipeline_stages (key) {
        key -> Text,
        name -> Text,
        position -> Nullable<Int4>,
        probability -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        deleted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    pipeline_targets (id) {
        id -> Uuid,
        owner_id -> Nullable<Uuid>,
        period -> Text,
        period_from -> Date,
        period_to -> Date,
        currency -> Text,
        amount -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    purchase_refunds (id) {
        id -> Uuid,
        purchase_id -> Uuid,
        amount -> Int8,
        reason -> Nullable<Text>,
        refunded_at -> Timestamptz,
        actor_type -> Text,
        actor_id -> Text,
    }
}

diesel::table! {
    purchases (id) {
        id -> Uuid,
        customer_id -> Uuid,
        external_ref -> Nullable<Text>,
        currency -> Text,
        amount -> Int8,
        cost -> Nullable<Int8>,
        refunded -> Int8,
        occurred_at -> Timestamptz,
        channel -> Nullable<Text>,
        items -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        opportunity_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        subject -> Text,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    search_vocabulary (word) {
        word -> Text,
    }
}

diesel::table! {
    service_tokens (jti) {
        jti -> Text,
        subject -> Text,
        role -> Text,
        kid -> Text,
        issued_at -> Timestamptz,
        issued_by -> Text,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_by -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        secret -> Text,
        legacy -> Bool,
        created_at -> Timestamptz,
        signs_until -> Nullable<Timestamptz>,
        verifies_until -> Nullable<Timestamptz>,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    survey_responses (id) {
        id -> Uuid,
        survey_id -> Uuid,
        customer_id -> Uuid,
        interaction_id -> Nullable<Uuid>,
        purchase_id -> Nullable<Uuid>,
        submitted_at -> Timestamptz,
        answers -> Jsonb,
        nps -> Nullable<Int2>,
        csat -> Nullable<Int2>,
        ces -> Nullable<Int2>,
        loyalty_tier -> Nullable<Text>,
        lifecycle_stage -> Text,
        region_type -> Nullable<Text>,
        single -> Bool,
        follow_up_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    surveys (id) {
        id -> Uuid,
        name -> Text,
        description -> Nullable<Text>,
        status -> Text,
        questions -> Jsonb,
        allow_multiple_responses -> Bool,
        follow_up -> Nullable<Jsonb>,
        revision -> Int4,
        revises -> Nullable<Uuid>,
        activated_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Nullable<Text>,
        active -> Bool,
        deactivated_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int8,
        credentials_version -> Int8,
        access -> Text,
    }
}

diesel::joinable!(complaint_status_changes -> interactions (interaction_id));
diesel::table! {
    /// The fan-out cursor (`cursor_txid`, `cursor_position`) is read by SQL only.
    webhooks (id) {
        id -> Uuid,
        url -> Text,
        description -> Nullable<Text>,
        event_types -> Array<Text>,
        filter -> Nullable<Jsonb>,
        active -> Bool,
        secret -> Text,
        previous_secret -> Nullable<Text>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        webhook_id -> Uuid,
        event_id -> Uuid,
        seq -> Int8,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        lease_until -> Nullable<Timestamptz>,
        lease_token -> Nullable<Uuid>,
        first_attempt_at -> Nullable<Timestamptz>,
        last_attempt_at -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_latency_ms -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        replay_of -> Nullable<Uuid>,
        created_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Uuid,
        delivery_id -> Uuid,
        attempted_at -> Timestamptz,
        status_code -> Nullable<Int4>,
        latency_ms -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::joinable!(customer_analytics -> customers (customer_id));
diesel::joinable!(customer_attribute_answers -> customers (customer_id));
diesel::joinable!(customer_attribute_answers -> survey_responses (response_id));
diesel::joinable!(customer_lifecycle_events -> customers (customer_id));
diesel::joinable!(customer_merge_moves -> customer_merges (merge_id));
diesel::joinable!(customer_merge_moves -> customers (from_id));
diesel::joinable!(customer_merges -> customers (survivor_id));
diesel::joinable!(customer_satisfaction -> customers (customer_id));
diesel::joinable!(customer_tombstones -> customer_merges (merge_id));
diesel::joinable!(customer_search_words -> customers (customer_id));
diesel::joinable!(customer_tags -> customers (customer_id));
diesel::joinable!(customers -> users (account_manager_id));
diesel::joinable!(import_chunks -> imports (import_id));
diesel::joinable!(import_error_rows -> imports (import_id));
diesel::joinable!(import_mapping_versions -> import_mappings (mapping_id));
diesel::joinable!(interactions -> customers (customer_id));
diesel::joinable!(interactions -> purchases (purchase_id));
diesel::joinable!(loyalty_ledger -> loyalty_lots (lot_id));
diesel::joinable!(loyalty_ledger -> purchases (purchase_id));
diesel::joinable!(opportunities -> customers (customer_id));
diesel::joinable!(opportunities -> pipeline_stages (stage));
diesel::joinable!(opportunities -> users (owner_id));
diesel::joinable!(opportunity_advances -> opportunities (opportunity_id));
diesel::joinable!(opportunity_stage_changes -> opportunities (opportunity_id));
diesel::joinable!(pipeline_settings -> pipeline_stages (credit_required_after));
diesel::joinable!(pipeline_targets -> users (owner_id));
diesel::joinable!(purchase_refunds -> purchases (purchase_id));
diesel::joinable!(purchases -> customers (customer_id));
diesel::joinable!(survey_responses -> customers (customer_id));
diesel::joinable!(survey_responses -> purchases (purchase_id));
diesel::joinable!(survey_responses -> surveys (survey_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));
diesel::joinable!(webhook_deliveries -> events (event_id));
diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));

diesel::allow_tables_to_appear_in_same_query!(
    analytics_kept_lines,
    analytics_kept_rankings,
    analytics_kept_segments,
    analytics_settings,
    api_clients,
    app_secrets,
    audit_events,
    complaint_status_changes,
    contacts,
    customer_analytics,
    customer_attribute_answers,
    customer_lifecycle_events,
    customer_merge_moves,
    customer_merges,
    customer_not_duplicates,
    customer_satisfaction,
    customer_search_words,
    customer_tags,
    customer_tombstones,
    customers,
    events,
    idempotency_keys,
    import_chunks,
    import_error_rows,
    import_mapping_versions,
    import_mappings,
    imports,
    interactions,
    loyalty_accounts,
    loyalty_ledger,
    loyalty_lots,
    loyalty_program,
    loyalty_tier_changes,
    loyalty_tiers,
    opportunities,
    opportunity_advances,
    opportunity_stage_changes,
    pipeline_settings,
    pipeline_stages,
    pipeline_targets,
    purchase_refunds,
    purchases,
    revoked_tokens,
    search_vocabulary,
    service_tokens,
    signing_keys,
    survey_responses,
    surveys,
    users,
    webhook_attempts,
    webhook_deliveries,
    webhooks,
);
