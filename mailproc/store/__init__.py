"""The database: models, prepared statements, the alembic schema and migrations, the keys
mail is claimed under, the read models, and the export. The only package that knows SQL.
"""
