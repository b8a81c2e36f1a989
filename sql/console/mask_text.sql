-- Free text (a log) with e-mail addresses and phone numbers masked, by the same rule as the views.
select console.mask_text(%(body)s) as body
