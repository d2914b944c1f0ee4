-- Puts customers ($1) back as a merge found them ($2: `{id: row}`, to_jsonb of each row),
-- each as a new version.
UPDATE customers c
SET kind = s.kind, name = s.name, organization_name = s.organization_name,
    email = s.email, phone = s.phone, address = s.address, region_type = s.region_type,
    birth_date = s.birth_date, gender = s.gender, occupation = s.occupation,
    income_band = s.income_band, national_id = s.national_id,
    preferred_channel = s.preferred_channel, consent_email = s.consent_email,
    consent_email_at = s.consent_email_at, consent_sms = s.consent_sms,
    consent_sms_at = s.consent_sms_at, tags = s.tags, attributes = s.attributes,
    source = s.source, external_id = s.external_id,
    account_manager_id = s.account_manager_id, lifecycle_stage = s.lifecycle_stage,
    relationship_level = s.relationship_level, qualification = s.qualification,
    deleted_at = s.deleted_at, erased_at = s.erased_at,
    version = c.version + 1, updated_at = now()
FROM jsonb_each($2) j
CROSS JOIN LATERAL jsonb_populate_record(NULL::customers, j.value) s
WHERE c.id = ANY ($1) AND c.id = (j.key)::uuid
