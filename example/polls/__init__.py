"""Sample poll app: Questions, Choices and the Users who vote for them.

It exists to show (and test) a cache strategy with every kind of relation: a foreign
key (Choice -> Question), its reverse (Question.choices) and a many-to-many to Django's
own User model (Choice.voters / User.votes).
"""
