"""Closed word lists the demo book is drawn from: the seller, the team, markets, companies, people.

Every domain and personal address uses the reserved `.example` names (RFC 2606), so a demo
store wired to a real SMTP server can never mail a real company. Phone numbers use the ranges
regulators keep for fiction where one exists (US/CA 555-01xx, UK 020 7946 0xxx, AU 5550 xxxx).
"""
from __future__ import annotations

from typing import NamedTuple

# ---- the seller ------------------------------------------------------------------------------

SELLER = "Brightlane"
SELLER_DOMAIN = "brightlane.example"
PRODUCTS = {
    "growth": "Brightlane Growth",
    "enterprise": "Brightlane Enterprise",
    "forecasting": "Forecasting add-on",
    "warehouse": "Warehouse Sync add-on",
}
COMPETITORS = ("Metricforge", "Clarivue", "Pulsegrid", "Revlytics")

OPEN_STAGES = ("Prospecting", "Discovery", "Demo", "Proposal", "Negotiation")
WON_STAGE = "Closed Won"
LOST_STAGE = "Closed Lost"
# Days a healthy deal typically spends in each open stage (low, high).
STAGE_DAYS = {"Prospecting": (3, 12), "Discovery": (5, 18), "Demo": (4, 14), "Proposal": (5, 18), "Negotiation": (5, 20)}

# ---- the team --------------------------------------------------------------------------------


class Person(NamedTuple):
    name: str
    role: str
    is_senior: bool
    timezone: str
    utc_offset: int  # standard-time hours; fixed so the book does not depend on the tz database
    work_start: int
    work_end: int
    team: str | None


MANAGER = Person("Maria Alvarez", "manager", True, "America/New_York", -5, 8, 17, None)
REPS = (
    Person("Nina Patel", "rep", True, "America/New_York", -5, 9, 17, "North America"),
    Person("Jake Morrison", "rep", False, "America/Chicago", -6, 8, 16, "North America"),
    Person("Sofia Reyes", "rep", False, "America/Los_Angeles", -8, 9, 17, "North America"),
    Person("Tom Becker", "rep", True, "Europe/Berlin", 1, 9, 18, "EMEA"),
    Person("Aisha Khan", "rep", False, "Europe/London", 0, 8, 16, "EMEA"),
    Person("Liam O'Connor", "rep", False, "Australia/Sydney", 10, 8, 17, "APAC"),
)
# Which reps work which countries; the first entry takes the larger share.
TERRITORY = {
    "United States": ("Nina Patel", "Jake Morrison", "Sofia Reyes"),
    "Canada": ("Jake Morrison", "Sofia Reyes"),
    "Brazil": ("Sofia Reyes",),
    "United Kingdom": ("Aisha Khan", "Tom Becker"),
    "Ireland": ("Liam O'Connor", "Aisha Khan"),
    "Germany": ("Tom Becker",),
    "France": ("Tom Becker", "Aisha Khan"),
    "Netherlands": ("Aisha Khan", "Tom Becker"),
    "Sweden": ("Tom Becker",),
    "Spain": ("Liam O'Connor", "Aisha Khan"),
    "Australia": ("Liam O'Connor",),
    "Singapore": ("Liam O'Connor",),
    "India": ("Liam O'Connor",),
}

# ---- markets ---------------------------------------------------------------------------------


class Market(NamedTuple):
    country: str
    weight: float
    utc_offset: int
    currency: str
    legal_suffixes: tuple[str, ...]
    names: str  # key into FIRST_NAMES / LAST_NAMES


MARKETS = (
    Market("United States", 40, -6, "USD", ("Inc.", "LLC", "Corp."), "en"),
    Market("United Kingdom", 14, 0, "GBP", ("Ltd", "plc"), "en"),
    Market("Germany", 10, 1, "EUR", ("GmbH", "AG"), "de"),
    Market("Canada", 6, -5, "CAD", ("Inc.", "Ltd."), "en"),
    Market("Australia", 5, 10, "AUD", ("Pty Ltd",), "en"),
    Market("France", 5, 1, "EUR", ("SAS", "SA"), "fr"),
    Market("Netherlands", 5, 1, "EUR", ("B.V.",), "nl"),
    Market("Sweden", 3, 1, "EUR", ("AB",), "sv"),
    Market("Spain", 3, 1, "EUR", ("S.L.", "S.A."), "es"),
    Market("Ireland", 3, 0, "EUR", ("Ltd", "DAC"), "en"),
    Market("India", 3, 5, "USD", ("Pvt Ltd",), "in"),
    Market("Singapore", 2, 8, "USD", ("Pte Ltd",), "sg"),
    Market("Brazil", 1, -3, "USD", ("Ltda",), "br"),
)

# Phone shapes per country: (country code, trunk prefix, groups). In a group, '#' is a random
# digit and '|' separates alternatives for the whole group. Display patterns use {cc}, {trunk}
# and {g0}.. for the groups; E.164 is always "+" + cc + the digits of the groups.
PHONE_SHAPES: dict[str, tuple[str, str, tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "United States": ("1", "", (("212|415|312|617|206|512|303|404|646|213",), ("555",), ("01##",)),
                      ("+{cc} ({g0}) {g1}-{g2}", "({g0}) {g1}-{g2}", "{g0}-{g1}-{g2}", "{g0}.{g1}.{g2}", "+{cc} {g0} {g1} {g2}")),
    "Canada": ("1", "", (("416|604|514|403|613",), ("555",), ("01##",)),
               ("+{cc} ({g0}) {g1}-{g2}", "{g0}-{g1}-{g2}", "({g0}) {g1}-{g2}")),
    "United Kingdom": ("44", "0", (("20",), ("7946",), ("0###",)),
                       ("+{cc} {g0} {g1} {g2}", "{trunk}{g0} {g1} {g2}", "+{cc} ({trunk}){g0} {g1} {g2}")),
    "Ireland": ("353", "0", (("1",), ("###",), ("####",)), ("+{cc} {g0} {g1} {g2}", "({trunk}{g0}) {g1} {g2}")),
    "Germany": ("49", "0", (("30|89|40|69|221",), ("####",), ("###|####",)),
                ("+{cc} {g0} {g1}{g2}", "{trunk}{g0} {g1}{g2}", "+{cc} ({trunk}){g0} {g1} {g2}", "{trunk}{g0}/{g1}{g2}")),
    "France": ("33", "0", (("1",), ("99",), ("00",), ("##",), ("##",)),
               ("+{cc} {g0} {g1} {g2} {g3} {g4}", "{trunk}{g0} {g1} {g2} {g3} {g4}", "+{cc} ({trunk}){g0} {g1} {g2} {g3} {g4}", "{trunk}{g0}.{g1}.{g2}.{g3}.{g4}")),
    "Netherlands": ("31", "0", (("20|10|30",), ("###",), ("####",)), ("+{cc} {g0} {g1} {g2}", "{trunk}{g0}-{g1} {g2}")),
    "Sweden": ("46", "0", (("8",), ("###",), ("###",), ("##",)), ("+{cc} {g0} {g1} {g2} {g3}", "{trunk}{g0}-{g1} {g2} {g3}")),
    "Spain": ("34", "", (("91#|93#",), ("###",), ("###",)), ("+{cc} {g0} {g1} {g2}", "{g0} {g1} {g2}")),
    "Australia": ("61", "0", (("2",), ("5550",), ("####",)), ("+{cc} {g0} {g1} {g2}", "({trunk}{g0}) {g1} {g2}")),
    "India": ("91", "0", (("80|22",), ("####",), ("####",)), ("+{cc} {g0} {g1} {g2}", "{trunk}{g0} {g1} {g2}", "+{cc}-{g0}-{g1}{g2}")),
    "Singapore": ("65", "", (("6###",), ("####",)), ("+{cc} {g0} {g1}", "{g0} {g1}")),
    "Brazil": ("55", "0", (("11|21",), ("3###|9####",), ("####",)), ("+{cc} {g0} {g1}-{g2}", "({g0}) {g1}-{g2}")),
}

# ---- people ----------------------------------------------------------------------------------

FIRST_NAMES = {
    "en": ("James", "Mary", "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Michael", "Emily",
           "David", "Sarah", "Daniel", "Jessica", "Kevin", "Rachel", "Marcus", "Hannah", "Jordan", "Taylor",
           "Ryan", "Lauren", "Brandon", "Megan", "Andre", "Grace", "Omar", "Chloe", "Nathan", "Priya",
           "Wei", "Carlos", "Aaliyah", "Benjamin", "Charlotte", "Samuel", "Amelia", "Tyler", "Natalie",
           "Connor", "Zoe", "Derek", "Imani", "Patrick", "Fiona", "Gareth", "Siobhan", "Mei", "Jamal"),
    "de": ("Lukas", "Anna", "Felix", "Laura", "Jonas", "Lena", "Maximilian", "Sophie", "Tobias", "Julia",
           "Jan", "Katharina", "Stefan", "Sabine", "Matthias", "Claudia", "Florian", "Miriam", "Jürgen", "Petra"),
    "fr": ("Camille", "Louis", "Chloé", "Hugo", "Manon", "Thomas", "Léa", "Nicolas", "Julie", "Antoine",
           "Élodie", "Mathieu", "Inès", "Guillaume", "Aurélie", "François"),
    "nl": ("Daan", "Sanne", "Bram", "Lotte", "Joost", "Femke", "Thijs", "Eva", "Ruben", "Anouk", "Pieter", "Iris"),
    "sv": ("Erik", "Anna", "Lars", "Karin", "Oskar", "Elin", "Johan", "Maja", "Björn", "Ingrid", "Axel", "Sofia"),
    "es": ("Javier", "Lucía", "Carlos", "María", "Pablo", "Carmen", "Alejandro", "Elena", "Diego", "Laura",
           "Sergio", "Marta", "Álvaro", "Nuria"),
    "in": ("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Neha", "Arjun", "Kavya", "Rahul", "Deepika",
           "Siddharth", "Meera", "Karthik", "Pooja"),
    "sg": ("Wei Ling", "Jun Jie", "Hui Min", "Darren", "Rachel", "Marcus", "Shi Hui", "Bryan", "Jia Hui", "Kelvin"),
    "br": ("Lucas", "Gabriela", "Mateus", "Beatriz", "Rafael", "Juliana", "Thiago", "Fernanda", "João", "Camila"),
}
LAST_NAMES = {
    "en": ("Smith", "Johnson", "Williams", "Brown", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
           "Lee", "Nguyen", "Patel", "Kim", "Chen", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker",
           "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
           "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Torres", "Parker",
           "Collins", "Edwards", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "O'Brien", "Okafor",
           "Hughes", "Fitzgerald", "Brennan", "Walsh", "Shah", "Ahmed", "Wong", "MacDonald"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
           "Hoffmann", "Koch", "Richter", "Wolf", "Schröder", "Neumann", "Zimmermann", "Krüger", "Hartmann"),
    "fr": ("Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
           "Moreau", "Lefèvre", "Garnier", "Fournier", "Girard"),
    "nl": ("de Jong", "Jansen", "de Vries", "van den Berg", "van Dijk", "Bakker", "Visser", "Smit", "Meijer",
           "de Boer", "Mulder", "Bos"),
    "sv": ("Andersson", "Johansson", "Karlsson", "Nilsson", "Eriksson", "Larsson", "Olsson", "Lindqvist",
           "Björk", "Lund", "Berg", "Holm"),
    "es": ("García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez", "Gómez",
           "Ruiz", "Navarro", "Torres"),
    "in": ("Sharma", "Patel", "Iyer", "Reddy", "Gupta", "Nair", "Mehta", "Rao", "Kapoor", "Singh", "Menon", "Joshi"),
    "sg": ("Tan", "Lim", "Lee", "Ng", "Wong", "Goh", "Chua", "Teo", "Koh", "Ong"),
    "br": ("Silva", "Santos", "Oliveira", "Souza", "Lima", "Pereira", "Costa", "Carvalho", "Almeida", "Ribeiro"),
}

# Titles by seniority. Decision makers are the first four levels.
TITLES = {
    "c_level": ("Chief Executive Officer", "Chief Financial Officer", "Chief Revenue Officer",
                "Chief Technology Officer", "Chief Operating Officer", "CEO & Co-founder"),
    "vp": ("VP Sales", "VP Marketing", "VP Finance", "VP Revenue Operations", "VP Engineering",
           "Vice President, Customer Success"),
    "head": ("Head of Revenue Operations", "Head of Sales", "Head of Data", "Head of Growth", "Head of IT",
             "Head of Sales Enablement"),
    "director": ("Director of Sales Operations", "Director of FP&A", "Marketing Director",
                 "Director, Business Intelligence", "IT Director", "Sales Director"),
    "manager": ("Sales Operations Manager", "Marketing Operations Manager", "BI Manager",
                "Revenue Operations Manager", "Finance Manager", "Customer Success Manager",
                "Demand Generation Manager", "Sales Manager"),
    "ic": ("Sales Operations Analyst", "Data Analyst", "Account Executive", "Marketing Specialist",
           "Business Analyst", "Financial Analyst", "Software Engineer", "Sales Development Representative",
           "Analytics Engineer", "Marketing Coordinator"),
}
DECISION_MAKER_LEVELS = ("c_level", "vp", "head", "director")
# How a title's level weighs on buying intent (a VP reading the pricing page means more).
LEVEL_INTENT = {"c_level": 0.5, "vp": 0.6, "head": 0.5, "director": 0.4, "manager": 0.1, "ic": -0.3}
LEVEL_WEIGHTS = {"c_level": 4, "vp": 8, "head": 9, "director": 13, "manager": 28, "ic": 38}
# People with no company address: mostly students, job seekers and freelancers.
PERSONAL_TITLES = ("Student", "Freelance Consultant", None, "MBA Candidate", "Independent Advisor")
PERSONAL_DOMAINS = ("example.com", "example.net", "example.org")

SOURCES = {  # source: (weight, how much it says about intent)
    "organic_search": (24, 0.0),
    "paid_search": (16, -0.1),
    "referral": (8, 0.8),
    "webinar": (14, 0.3),
    "event": (9, 0.2),
    "outbound": (20, -0.4),
    "partner": (9, 0.6),
}
EVENTS = ("RevOps Summit Berlin", "SaaS Growth Forum London", "Pipeline Live Austin", "Data & Revenue Expo Chicago")
WEBINARS = ("Forecasting without spreadsheets", "The 2026 RevOps benchmark", "Board-ready pipeline reporting in 30 minutes",
            "Connecting CRM and warehouse data")
CAMPAIGNS = ("q1-forecasting-launch", "revops-benchmark-2026", "nurture-finance-leaders", "security-trust-series",
             "product-update-digest", "webinar-invite")
PAID_KEYWORDS = ("revenue analytics software", "sales forecasting tool", "pipeline reporting", "crm analytics dashboard")

# ---- companies -------------------------------------------------------------------------------

COMPANY_STEMS = (
    "Northwind", "Bluepeak", "Meridian", "Silverline", "Ironbridge", "Crestview", "Redwood", "Summitline",
    "Lakeshore", "Brightwater", "Oakhurst", "Granite", "Cobalt", "Evergreen", "Falconer", "Harborview",
    "Keystone", "Lighthouse", "Maplestone", "Nimbus", "Orion", "Pinnacle", "Quartzite", "Riverbend",
    "Sterling", "Tidewater", "Vantage", "Willowbrook", "Zenith", "Atlasway", "Beaconsfield", "Cedarline",
    "Deltaform", "Emberly", "Fjordline", "Helix", "Juniper", "Kestrel", "Mosaic", "Novagate", "Parallax",
    "Quillon", "Relaypoint", "Sablewood", "Trellis", "Upland", "Vertexa", "Wavelength", "Yardley",
    "Ashford", "Bramblecote", "Copperfield", "Driftwood", "Eastgate", "Foxglove", "Glenmore", "Hawthorne",
    "Inkwell", "Jadestone", "Kingsbridge", "Larchmont", "Moorland", "Northgate", "Oxbow", "Pembroke",
    "Quayside", "Rosemont", "Saltmarsh", "Thistle", "Umbra", "Valemont", "Westbury", "Alderbrook",
    "Birchwood", "Clearwater", "Dunmore", "Elmstead", "Fairhaven", "Goldcrest", "Highpoint",
)


class Industry(NamedTuple):
    name: str
    weight: float
    fit: float            # how well it matches the seller's ideal customer profile
    sensitive: bool       # regulated data: records stay on a local model
    suffixes: tuple[str, ...]
    revenue_per_employee: tuple[int, int]


INDUSTRIES = (
    Industry("Software", 22, 0.9, False, ("Software", "Labs", "Systems", "Cloud", "Technologies"), (150_000, 320_000)),
    Industry("Financial Services", 12, 0.7, False, ("Capital", "Financial", "Payments", "Wealth"), (250_000, 600_000)),
    Industry("Retail & E-commerce", 11, 0.5, False, ("Outfitters", "Home", "Market", "Goods", "Apparel"), (120_000, 300_000)),
    Industry("Logistics", 9, 0.5, False, ("Logistics", "Freight", "Shipping", "Supply"), (100_000, 250_000)),
    Industry("Manufacturing", 10, 0.2, False, ("Manufacturing", "Industries", "Components", "Fabrication"), (150_000, 350_000)),
    Industry("Professional Services", 9, 0.4, False, ("Consulting", "Partners", "Advisory", "Group"), (120_000, 260_000)),
    Industry("Media", 6, 0.2, False, ("Media", "Studios", "Publishing"), (100_000, 240_000)),
    Industry("Telecommunications", 5, 0.3, False, ("Telecom", "Networks", "Communications"), (250_000, 500_000)),
    Industry("Healthcare", 6, 0.3, True, ("Health", "Medical Group", "Clinics", "Diagnostics"), (90_000, 200_000)),
    Industry("Education", 5, -0.3, False, ("Learning", "Academy", "Education"), (60_000, 150_000)),
    Industry("Energy", 5, 0.1, False, ("Energy", "Power", "Renewables"), (300_000, 800_000)),
)
TECH_STACK = ("Salesforce", "HubSpot", "Snowflake", "BigQuery", "NetSuite", "Zendesk", "Okta", "Slack",
              "Marketo", "dbt", "Looker", "Microsoft Dynamics", "Gong", "Outreach")

# ---- web and content -------------------------------------------------------------------------

PAGE_TITLES = {
    "/": "Brightlane: revenue analytics for B2B teams",
    "/product": "Product overview",
    "/product/forecasting": "Forecasting",
    "/pricing": "Pricing",
    "/security": "Security & compliance",
    "/integrations": "Integrations",
    "/integrations/salesforce": "Salesforce integration",
    "/integrations/hubspot": "HubSpot integration",
    "/integrations/snowflake": "Snowflake integration",
    "/case-studies": "Customer stories",
    "/demo": "Book a demo",
    "/docs/getting-started": "Docs: getting started",
    "/careers": "Careers",
    "/about": "About us",
}
CASE_STUDIES = ("northbeam-cuts-forecast-error-40", "how-ledgerly-closed-the-quarter-in-3-days",
                "fintech-revops-at-scale", "retail-pipeline-visibility", "logistics-board-reporting")
BLOG_POSTS = ("what-is-revenue-operations", "pipeline-coverage-ratio-explained", "forecast-categories-101",
              "sales-velocity-formula", "crm-data-hygiene-checklist", "weighted-pipeline-vs-ai-forecast",
              "board-deck-metrics-for-saas", "how-to-run-a-deal-review")
# Where someone of high intent browses, and where someone just curious does.
HIGH_INTENT_PAGES = ("/pricing", "/security", "/integrations", "/integrations/salesforce", "/integrations/snowflake",
                     "/case-studies", "/demo", "/product/forecasting")
LOW_INTENT_PAGES = ("/", "/about", "/careers", "/product", "/docs/getting-started", "/integrations/hubspot")
ASSETS = (
    ("2026 RevOps Benchmark Report", "pdf"),
    ("Forecasting Playbook for CFOs", "pdf"),
    ("Security Whitepaper (SOC 2 Type II overview)", "pdf"),
    ("ROI Calculator", "xlsx"),
    ("Pipeline Review Template", "xlsx"),
    ("Buyer's Guide to Revenue Analytics", "pdf"),
    ("Salesforce + Brightlane Integration Guide", "pdf"),
)
FORMS = {
    "demo_request": "/demo",
    "contact_sales": "/contact",
    "webinar_registration": "/webinars",
    "newsletter": "/blog",
    "trial_signup": "/signup",
    "event_badge_scan": "/events",
    "partner_referral": "/partners",
}
DISQUALIFY_REASONS = ("no budget", "too small", "student or job seeker", "using a competitor under contract",
                      "no response after sequence", "wrong persona")
LOST_REASONS = ("chose competitor", "no budget", "no decision", "timing", "missing feature")
