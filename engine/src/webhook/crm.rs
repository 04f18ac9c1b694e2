//! Which CRM, and which deal in which CRM account: the identity every other webhook
//! module keys on (the mirror's records, the ids of the events told about a deal).
//! It imports nothing from the rest of [`super`], so both the parent and
//! [`super::deal`] can build on it; [`super`] re-exports its items.

/// The CRMs Pacer has an endpoint for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Crm {
    Native,
    Hubspot,
    Pipedrive,
    Salesforce,
}

impl Crm {
    /// The name used in event ids, `source`, config sections and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Crm::Native => "native",
            Crm::Hubspot => "hubspot",
            Crm::Pipedrive => "pipedrive",
            Crm::Salesforce => "salesforce",
        }
    }
}

/// Identifies one deal of one CRM account: the mirror's key.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DealKey {
    pub crm: Crm,
    /// The CRM account: HubSpot's portalId, Pipedrive's company_id, Salesforce's
    /// OrganizationId.
    pub tenant: String,
    /// The CRM's id of the deal.
    pub deal: String,
}

impl DealKey {
    /// `<crm>:<tenant>:<deal>`: the prefix of the ids of events about this deal, and
    /// the deal's id in Pacer.
    pub fn id(&self) -> String {
        format!("{}:{}:{}", self.crm.as_str(), self.tenant, self.deal)
    }
}
