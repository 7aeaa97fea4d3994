"""Object types and their built-in property definitions (notes sections 2, 6, 10)."""

from .util import iso_ms

# Property types the API accepts (notes section 7).
TYPES = ("bool", "date", "datetime", "enumeration", "number", "phone_number", "string")
FIELD_TYPES = ("booleancheckbox", "calculation_equation", "checkbox", "date", "file",
               "html", "number", "phonenumber", "radio", "select", "text", "textarea")
_DEFAULT_FIELD = {"bool": "booleancheckbox", "date": "date", "datetime": "date",
                  "enumeration": "select", "number": "number",
                  "phone_number": "phonenumber", "string": "text"}
_DEFS_STAMP = 1577836800000  # 2020-01-01: createdAt of built-in definitions


class PropDef:
    """One property definition of an object type."""

    __slots__ = ("name", "label", "type", "field_type", "group", "description",
                 "options", "unique", "hubspot_defined", "read_only", "calculated",
                 "hidden", "display_order", "created", "updated", "archived",
                 "form_field", "optvals", "multi", "fast", "ro")

    def __init__(self, name, type_="string", field_type=None, options=None,
                 label=None, group="information", unique=False, hubspot_defined=True,
                 read_only=False, calculated=False, hidden=False, description="",
                 display_order=-1, form_field=False, created=_DEFS_STAMP):
        """Build a definition; options may be a list of values or option dicts."""
        self.name = name
        self.label = label or name.replace("hs_", "").replace("_", " ").capitalize()
        self.type = type_
        self.field_type = field_type or _DEFAULT_FIELD[type_]
        self.group = group
        self.description = description
        self.unique = unique
        self.hubspot_defined = hubspot_defined
        self.read_only = read_only
        self.calculated = calculated
        self.hidden = hidden
        self.display_order = display_order
        self.form_field = form_field
        self.created = created
        self.updated = created
        self.archived = False
        self.set_options(options or [])

    def set_options(self, options):
        """Replace the enumeration options (values or option dicts)."""
        out = []
        for i, opt in enumerate(options):
            if isinstance(opt, str):
                opt = {"label": opt, "value": opt}
            out.append({"label": str(opt.get("label", opt.get("value"))),
                        "value": str(opt.get("value")),
                        "displayOrder": opt.get("displayOrder", i),
                        "hidden": bool(opt.get("hidden", False)),
                        "description": opt.get("description", "")})
        self.options = out
        self.optvals = frozenset(o["value"] for o in out)
        self.refresh()

    def refresh(self):
        """Recompute derived flags after the definition changed."""
        self.multi = self.field_type == "checkbox"
        self.ro = self.read_only or self.calculated or self.name in SYSTEM_READ_ONLY
        self.fast = self.type in ("string", "phone_number") and self.name != "email" \
            and not self.ro and not self.archived

    def to_json(self):
        """The Property JSON shape of the properties API."""
        return {
            "name": self.name, "label": self.label, "type": self.type,
            "fieldType": self.field_type, "description": self.description,
            "groupName": self.group, "options": self.options,
            "displayOrder": self.display_order, "calculated": self.calculated,
            "externalOptions": False, "hasUniqueValue": self.unique,
            "hidden": self.hidden, "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {"archivable": not self.hubspot_defined,
                                     "readOnlyDefinition": self.hubspot_defined,
                                     "readOnlyValue": self.read_only},
            "formField": self.form_field,
            "createdAt": iso_ms(self.created), "updatedAt": iso_ms(self.updated),
            "archived": self.archived,
        }


def _spec(text):
    """Parse 'name:type[:fieldType][:opt|opt]' into a PropDef."""
    parts = text.split(":")
    name, type_ = parts[0], parts[1] if len(parts) > 1 else "string"
    field = parts[2] if len(parts) > 2 and parts[2] else None
    opts = parts[3].split("|") if len(parts) > 3 else None
    return PropDef(name, type_, field, opts)


# Option lists (notes section 10; several are third-party/unconfirmed).
_LIFECYCLE = ("subscriber|lead|marketingqualifiedlead|salesqualifiedlead|"
              "opportunity|customer|evangelist|other")
_LEAD_STATUS = ("NEW|OPEN|IN_PROGRESS|OPEN_DEAL|UNQUALIFIED|ATTEMPTED_TO_CONTACT|"
                "CONNECTED|BAD_TIMING")
_DEALSTAGES = ("appointmentscheduled|qualifiedtobuy|presentationscheduled|"
               "decisionmakerboughtin|contractsent|closedwon|closedlost")
_PAY_STATUS = ("processing|succeeded|failed|partially_refunded|refunded|"
               "processing_refund|disputed_won|disputed_lost|"
               "disputed_action_required|disputed_awaiting_decision")
_PAY_METHOD = "card|ach|cash|check|wire_transfer|other|sepa|bacs|pads"
_PROCESSOR = "hs_payments|byo_stripe|none|quickbooks|xero"
_FREQ = ("weekly|biweekly|monthly|quarterly|per_six_months|annually|"
         "per_two_years|per_three_years|per_four_years|per_five_years")

# name, objectTypeId, error word, webhook prefix (None = object.*), created prop,
# default properties (None = created + last-modified + id), property specs
STANDARD = [
    ("contacts", "0-1", "CONTACT", "contact", "createdate",
     "firstname,lastname,email,lastmodifieddate,hs_object_id,createdate",
     ["email", "firstname", "lastname", "jobtitle", "phone:string:phonenumber",
      "mobilephone:string:phonenumber", "company", "website", "address", "city",
      "state", "zip", "country", "lifecyclestage:enumeration:radio:" + _LIFECYCLE,
      "hs_lead_status:enumeration:radio:" + _LEAD_STATUS,
      "hubspot_owner_id:enumeration", "associatedcompanyid:number",
      "date_of_birth", "notes_last_updated:datetime", "hs_language",
      "salutation", "industry", "annualrevenue", "message:string:textarea"]),
    ("companies", "0-2", "COMPANY", "company", "createdate",
     "name,domain,createdate,hs_lastmodifieddate,hs_object_id",
     ["name", "domain", "website", "phone:string:phonenumber", "address", "city",
      "state", "zip", "country", "industry", "description:string:textarea",
      "numberofemployees:number", "annualrevenue:number",
      "lifecyclestage:enumeration:radio:" + _LIFECYCLE,
      "type:enumeration:select:PROSPECT|PARTNER|RESELLER|VENDOR|OTHER",
      "hubspot_owner_id:enumeration", "founded_year", "is_public:bool"]),
    ("deals", "0-3", "DEAL", "deal", "createdate",
     "dealname,amount,closedate,pipeline,dealstage,createdate,hs_lastmodifieddate,"
     "hs_object_id",
     ["dealname", "amount:number", "dealstage:enumeration:radio:" + _DEALSTAGES,
      "pipeline:enumeration:select:default", "closedate:datetime",
      "hubspot_owner_id:enumeration",
      "dealtype:enumeration:radio:newbusiness|existingbusiness",
      "description:string:textarea", "hs_priority:enumeration:radio:low|medium|high",
      "deal_currency_code", "hs_forecast_probability:number",
      "hs_deal_stage_probability:number"]),
    ("tickets", "0-5", "TICKET", "ticket", "createdate",
     "content,hs_pipeline,hs_pipeline_stage,hs_ticket_category,hs_ticket_priority,"
     "subject,createdate,hs_lastmodifieddate,hs_object_id",
     ["subject", "content:string:textarea", "hs_pipeline:enumeration:select:0",
      "hs_pipeline_stage:enumeration:select:1|2|3|4",
      "hs_ticket_priority:enumeration:select:LOW|MEDIUM|HIGH|URGENT",
      "hs_ticket_category:enumeration:checkbox:PRODUCT_ISSUE|BILLING_ISSUE|"
      "FEATURE_REQUEST|GENERAL_INQUIRY",
      "hubspot_owner_id:enumeration", "source_type"]),
    ("products", "0-7", "PRODUCT", "product", "createdate",
     "name,description,price,createdate,hs_lastmodifieddate,hs_object_id",
     ["name", "description:string:textarea", "price:number", "hs_sku", "hs_folder",
      "hs_cost_of_goods_sold:number", "hs_recurring_billing_period",
      "recurringbillingfrequency:enumeration:select:" + _FREQ, "hs_url"]),
    ("line_items", "0-8", "LINE_ITEM", "line_item", "createdate",
     "quantity,amount,price,createdate,hs_lastmodifieddate,hs_object_id",
     ["name", "quantity:number", "price:number", "amount:number", "hs_product_id",
      "hs_sku", "description:string:textarea", "discount:number",
      "hs_discount_percentage:number", "tax:number",
      "recurringbillingfrequency:enumeration:select:" + _FREQ,
      "hs_recurring_billing_period", "hs_recurring_billing_start_date:date",
      "hs_line_item_currency_code"]),
    ("quotes", "0-14", "QUOTE", None, "hs_createdate",
     "hs_expiration_date,hs_public_url_key,hs_status,hs_title,hs_createdate,"
     "hs_lastmodifieddate,hs_object_id",
     ["hs_title", "hs_expiration_date:date",
      "hs_status:enumeration:select:DRAFT|APPROVAL_NOT_NEEDED|PENDING_APPROVAL|"
      "APPROVED|REJECTED", "hs_public_url_key", "hs_language", "hs_currency",
      "hs_quote_amount:number", "hs_sender_email", "hs_comments:string:textarea"]),
    ("invoices", "0-53", "INVOICE", None, "createdate", None,
     ["hs_invoice_status:enumeration:select:draft|open|paid|voided",
      "hs_amount_billed:number", "hs_balance_due:number", "hs_amount_paid:number",
      "hs_subtotal:number", "hs_due_date:date", "hs_invoice_date:date", "hs_number",
      "hs_currency", "hs_invoice_billable:bool", "hs_purchase_order_number",
      "hs_comments:string:textarea", "hs_title"]),
    ("subscriptions", "0-69", "SUBSCRIPTION", None, "hs_createdate",
     "hs_createdate,hs_lastmodifieddate,hs_object_id",
     ["hs_name", "hs_status:enumeration:select:active|past_due|canceled|expired|scheduled",
      "hs_recurring_revenue:number", "hs_invoice_creation:enumeration:select:on|off",
      "hs_start_date:date", "hs_end_date:date", "hs_next_payment_due_date:date",
      "hs_last_payment_date:datetime", "hs_currency_code",
      "hs_recurring_billing_frequency:enumeration:select:" + _FREQ,
      "hs_subscription_type"]),
    ("discounts", "0-84", "DISCOUNT", None, "hs_createdate", None,
     ["hs_label", "hs_value:number", "hs_type:enumeration:select:PERCENT|FIXED",
      "hs_sort_order:number"]),
    ("fees", "0-85", "FEE", None, "hs_createdate", None,
     ["hs_label", "hs_value:number", "hs_type:enumeration:select:PERCENT|FIXED",
      "hs_sort_order:number"]),
    ("taxes", "0-86", "TAX", None, "hs_createdate", None,
     ["hs_label", "hs_value:number", "hs_type:enumeration:select:PERCENT|FIXED",
      "hs_sort_order:number"]),
    ("commerce_payments", "0-101", "COMMERCE_PAYMENT", None, "createdate", None,
     ["hs_initial_amount:number", "hs_initiated_date:datetime",
      "hs_latest_status:enumeration:select:" + _PAY_STATUS,
      "hs_payment_method_type:enumeration:select:" + _PAY_METHOD,
      "hs_processor_type:enumeration:select:" + _PROCESSOR, "hs_currency_code",
      "hs_net_amount:number", "hs_refunds_amount:number", "hs_fees_amount:number",
      "hs_customer_email", "hs_reference_number", "hs_internal_comment:string:textarea",
      "hs_payment_source_name"]),
    ("orders", "0-123", "ORDER", None, "hs_createdate", None,
     ["hs_order_name", "hs_currency_code", "hs_total_price:number",
      "hs_subtotal_price:number", "hs_order_discount:number", "hs_tax:number",
      "hs_shipping_cost:number", "hs_pipeline", "hs_pipeline_stage",
      "hs_external_order_id", "hs_external_order_status", "hs_fulfillment_status",
      "hs_billing_address_email", "hs_shipping_address_city", "hs_source_store"]),
    ("leads", "0-136", "LEAD", None, "hs_createdate", None,
     ["hs_lead_name", "hs_lead_type", "hs_lead_label", "hs_pipeline",
      "hs_pipeline_stage", "hubspot_owner_id:enumeration"]),
    ("carts", "0-142", "CART", None, "hs_createdate", None,
     ["hs_cart_name", "hs_currency_code", "hs_total_price:number",
      "hs_subtotal_price:number", "hs_cart_url", "hs_external_cart_id",
      "hs_external_status", "hs_source_store", "hs_cart_discount:number",
      "hs_tax:number", "hs_shipping_cost:number"]),
    # Activities (engagements): HubSpot-defined, served by the objects and
    # properties APIs, not by the custom-object schemas API (notes 2).
    ("notes", "0-46", "NOTE", None, "hs_createdate", None,
     ["hs_timestamp:datetime", "hs_note_body:string:html", "hubspot_owner_id:enumeration",
      "hs_attachment_ids:enumeration:checkbox"]),
    ("calls", "0-48", "CALL", None, "hs_createdate", None,
     ["hs_timestamp:datetime", "hs_call_title", "hs_call_body:string:html",
      "hs_call_duration:number", "hs_call_direction:enumeration:select:INBOUND|OUTBOUND",
      "hs_call_status:enumeration:select:BUSY|CALLING_CRM_USER|CANCELED|COMPLETED|"
      "CONNECTING|FAILED|IN_PROGRESS|NO_ANSWER|QUEUED|RINGING",
      "hs_call_disposition", "hs_call_from_number", "hs_call_to_number",
      "hs_call_recording_url", "hubspot_owner_id:enumeration"]),
    ("emails", "0-49", "EMAIL", None, "hs_createdate", None,
     ["hs_timestamp:datetime", "hs_email_subject", "hs_email_text:string:textarea",
      "hs_email_html:string:html",
      "hs_email_direction:enumeration:select:EMAIL|INCOMING_EMAIL|FORWARDED_EMAIL",
      "hs_email_status:enumeration:select:BOUNCED|FAILED|SCHEDULED|SENDING|SENT",
      "hs_email_headers:string:textarea", "hubspot_owner_id:enumeration"]),
    ("meetings", "0-47", "MEETING", None, "hs_createdate", None,
     ["hs_timestamp:datetime", "hs_meeting_title", "hs_meeting_body:string:html",
      "hs_internal_meeting_notes:string:html", "hs_meeting_external_url",
      "hs_meeting_location", "hs_meeting_start_time:datetime",
      "hs_meeting_end_time:datetime",
      "hs_meeting_outcome:enumeration:select:SCHEDULED|COMPLETED|RESCHEDULED|NO_SHOW|CANCELED",
      "hubspot_owner_id:enumeration"]),
    ("tasks", "0-27", "TASK", None, "hs_createdate", None,
     ["hs_timestamp:datetime", "hs_task_subject", "hs_task_body:string:html",
      "hs_task_status:enumeration:select:NOT_STARTED|COMPLETED|IN_PROGRESS|WAITING|DEFERRED",
      "hs_task_priority:enumeration:select:LOW|MEDIUM|HIGH|NONE",
      "hs_task_type:enumeration:select:EMAIL|CALL|TODO", "hubspot_owner_id:enumeration"]),
]

# Values the fake fills in on create when the caller leaves them out.
CREATE_DEFAULTS = {
    "invoices": {"hs_invoice_status": "draft"},
    "subscriptions": {"hs_invoice_creation": "off"},
}

# Properties whose values the fake maintains itself (read-only on write).
SYSTEM_READ_ONLY = ("hs_object_id", "hs_lastmodifieddate", "lastmodifieddate",
                    "hs_merged_object_ids", "hs_email_domain")


def system_props(contacts):
    """System property definitions every object type carries."""
    props = [
        PropDef("hs_object_id", "number", label="Record ID", read_only=True),
        PropDef("createdate", "datetime", label="Create date"),
        PropDef("hs_createdate", "datetime", label="Object create date/time"),
        PropDef("hs_lastmodifieddate", "datetime", label="Object last modified date/time",
                read_only=True, hidden=contacts),
        PropDef("hs_merged_object_ids", "enumeration", "checkbox",
                label="Merged record IDs", read_only=True),
    ]
    if contacts:
        props.append(PropDef("lastmodifieddate", "datetime", label="Last Modified Date",
                             read_only=True))
        props.append(PropDef("hs_email_domain", label="Email Domain", read_only=True,
                             calculated=True))
        props.append(PropDef("hs_additional_emails", "enumeration", "checkbox",
                             label="Additional email addresses", read_only=True))
    return props


def standard_specs():
    """Yield (name, tid, word, hook, created, defaults, [PropDef...]) tuples."""
    for name, tid, word, hook, created, dflt, specs in STANDARD:
        props = system_props(name == "contacts") + [_spec(s) for s in specs]
        yield name, tid, word, hook, created, dflt, props
