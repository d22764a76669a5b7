"""The site database: engine, migrations, tables and one repository module per domain."""
