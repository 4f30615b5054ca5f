"""The validator: its seven rules, the meaning check shared by the polish guard and the edit check, and re-
validation of an edited letter.
"""
