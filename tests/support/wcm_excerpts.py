"""Real WCM.log excerpts, as ../shared/reference/configmgr-log-lines.md quotes them (test data
for the log tracker's tests)."""

from __future__ import annotations

# MS-WCM (1.2): a product/classification change, the file-notification trigger, success.
MS_WCM_SUCCESS = [
    "File notification triggered WCM Inbox.",
    "Setting new configuration state to 4 (WSUS_CONFIG_SUBSCRIPTION_PENDING)",
    "Attempting connection to WSUS server: CE1SITE.CONTOSO.COM, port: 8530, useSSL: False",
    "Successfully connected to server: CE1SITE.CONTOSO.COM, port: 8530, useSSL: False",
    'Subscribed Update Categories <?xml version="1.0" ?>~~<Categories>~~ <Category Id="Product:'
    'a105a108-7c9b-4518-bbbe- 73f0fe30012b"><![CDATA[Windows Server 2012]]></Category>~~ ... '
    "~~</Categories>",
    "Configuration successful. Will wait for 1 minute for any subscription or proxy changes",
    "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
]
# MS-SSL (1.5, "edited" by the source: its "..." lines are left out here).
MS_SSL = [
    "SCF change notification triggered.",
    "Populating config from SCF",
    "Setting new configuration state to 1 (WSUS_CONFIG_PENDING)",
    "Attempting connection to local WSUS server",
    "Successfully connected to local WSUS server",
    "Setting new configuration state to 2 (WSUS_CONFIG_SUCCESS)",
]
