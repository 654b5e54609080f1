-- The trading calendar a subscription's series follows when its asset's exchange does not say
-- (or says wrong): '24/7', '24/5' or an exchange code such as 'XNYS'. NULL: from the asset.
ALTER TABLE subscriptions ADD COLUMN calendar text;
