package main

// The word lists below are the whole vocabulary of the sample catalog. Editing them
// changes the generated file; run go generate ./pkg/product afterwards. They avoid
// '<', '>' and '&', which encoding/json would escape as \u003c and friends.

type brand struct{ name, code string }

var brands = []brand{
	{"Northwind", "NW"}, {"Bluepeak", "BP"}, {"Oakline", "OL"}, {"Fernway", "FW"},
	{"Ironbark", "IB"}, {"Lumen", "LM"}, {"Saltmarsh", "SM"}, {"Kestrel", "KS"},
	{"Tidewater", "TW"}, {"Alder", "AD"}, {"Copperfield", "CF"}, {"Meridian", "MR"},
}

var adjectives = []string{
	"Classic", "Compact", "Everyday", "Heritage", "Pro", "Ultralight", "Modern",
	"Rugged", "Essential", "Deluxe", "Slim", "Studio", "Trail", "Signature",
}

var colors = []string{
	"Slate", "Navy", "Sand", "Forest", "Charcoal", "Rust", "Oat", "Sky Blue", "Black",
}

var extraViews = []string{"side", "back", "detail", "in-use", "packaging"}

type category struct {
	slug, code             string
	minDollars, maxDollars int64
	colors                 bool // whether names get a colour suffix
	nouns                  []string
	materials              []string
	uses                   []string
	features               []string
}

var categories = []category{
	{
		slug: "kitchen", code: "KIT", minDollars: 8, maxDollars: 180,
		nouns:     []string{"Skillet", "Chef Knife", "Kettle", "Cutting Board", "Saucepan", "Mixing Bowl Set", "Pour-Over Coffee Maker", "Spice Rack", "Dutch Oven", "Utensil Set"},
		materials: []string{"cast iron", "stainless steel", "bamboo", "enamelled steel", "borosilicate glass", "walnut", "anodised aluminium"},
		uses:      []string{"everyday cooking", "weekend baking", "small kitchens", "slow Sunday breakfasts", "feeding a crowd"},
		features: []string{
			"It heats evenly and holds its temperature when cold ingredients go in.",
			"The handle stays cool on the hob and is riveted, not glued.",
			"It is dishwasher safe, though a quick hand wash keeps it looking new for longer.",
			"Works on gas, electric and induction hobs.",
			"A flat base keeps it steady on the worktop.",
			"Measurements are etched inside, so they never wash off.",
			"It nests with the rest of the range to save cupboard space.",
		},
	},
	{
		slug: "outdoor", code: "OUT", minDollars: 15, maxDollars: 420,
		nouns:     []string{"Tent", "Sleeping Bag", "Daypack", "Camp Stove", "Trekking Poles", "Headlamp", "Hammock", "Water Filter", "Camp Chair", "Cooler"},
		materials: []string{"ripstop nylon", "recycled polyester", "aluminium", "carbon fibre", "waxed canvas", "titanium"},
		uses:      []string{"weekend camping", "long-distance hiking", "festival season", "backyard nights", "alpine trips"},
		features: []string{
			"It packs down small enough to fit in the side pocket of most packs.",
			"Seams are taped and the fabric sheds rain in a downpour.",
			"It sets up in under five minutes, even by one person in the dark.",
			"Reflective details make it easy to find after sunset.",
			"Every buckle and zip can be worked with gloves on.",
			"It was field tested over three seasons in wet and windy conditions.",
			"Spare parts are sold separately, so a broken clip does not end its life.",
		},
	},
	{
		slug: "electronics", code: "ELE", minDollars: 12, maxDollars: 650,
		nouns:     []string{"Wireless Earbuds", "Bluetooth Speaker", "USB-C Charger", "Power Bank", "Smart Plug", "Desk Lamp", "Mechanical Keyboard", "Webcam", "Portable SSD", "E-Reader"},
		materials: []string{"matte aluminium", "recycled plastic", "soft-touch polymer", "anodised aluminium", "tempered glass"},
		uses:      []string{"working from home", "commuting", "travel", "long study sessions", "the living room"},
		features: []string{
			"It charges over USB-C and reaches full charge in about two hours.",
			"Firmware updates arrive through the companion app.",
			"Battery life runs to a full working day on a single charge.",
			"It pairs with two devices at once and switches between them automatically.",
			"A low-power mode stretches the battery on long trips.",
			"It ships with a braided cable and a travel pouch.",
			"The status light dims at night so it never lights up a bedroom.",
		},
	},
	{
		slug: "apparel", code: "APP", minDollars: 14, maxDollars: 260, colors: true,
		nouns:     []string{"Crew Neck Tee", "Hoodie", "Rain Jacket", "Chino Trousers", "Merino Socks", "Fleece Vest", "Oxford Shirt", "Beanie", "Down Jacket", "Running Shorts"},
		materials: []string{"organic cotton", "merino wool", "recycled nylon", "linen", "brushed fleece", "Pima cotton"},
		uses:      []string{"everyday wear", "cool mornings", "the daily commute", "layering in winter", "travel days"},
		features: []string{
			"The fit is relaxed through the body without being boxy.",
			"Flat seams sit comfortably under a backpack strap.",
			"It is pre-washed, so it will not shrink after the first wash.",
			"Deep pockets hold a phone securely.",
			"The fabric breathes well and dries quickly.",
			"Reinforced stitching at the stress points makes it last.",
			"Sizes run true; check the size guide for exact measurements.",
		},
	},
	{
		slug: "home", code: "HOM", minDollars: 9, maxDollars: 380,
		nouns:     []string{"Throw Blanket", "Table Lamp", "Storage Basket", "Wall Clock", "Bath Towel Set", "Linen Duvet Cover", "Plant Pot", "Candle", "Floor Cushion", "Picture Frame"},
		materials: []string{"stoneware", "oak", "linen", "seagrass", "brass", "Turkish cotton", "recycled glass"},
		uses:      []string{"the living room", "a calm bedroom", "small apartments", "guest rooms", "the home office"},
		features: []string{
			"Each piece is finished by hand, so no two are quite the same.",
			"Neutral tones sit easily alongside most interiors.",
			"It arrives fully assembled and ready to use.",
			"Soft enough for every day, sturdy enough to keep its shape.",
			"Felt pads underneath protect wooden surfaces.",
			"It is machine washable at forty degrees.",
			"Sustainably sourced materials are certified by an independent body.",
		},
	},
	{
		slug: "toys", code: "TOY", minDollars: 6, maxDollars: 140,
		nouns:     []string{"Building Blocks", "Wooden Train Set", "Puzzle", "Plush Bear", "Kite", "Craft Kit", "Board Game", "Marble Run", "Stacking Rings", "Science Kit"},
		materials: []string{"beech wood", "recycled cardboard", "organic cotton", "food-grade silicone", "non-toxic plastic"},
		uses:      []string{"rainy afternoons", "curious toddlers", "family game night", "early learners", "birthday gifts"},
		features: []string{
			"Pieces are large enough to be safe for small hands.",
			"Paints and finishes are water based and non-toxic.",
			"It encourages open-ended play rather than a single right answer.",
			"Everything packs back into its own storage box.",
			"Clear picture instructions mean no reading is needed.",
			"It meets current toy safety standards for children over three.",
			"Sets can be combined with others in the range.",
		},
	},
	{
		slug: "beauty", code: "BEA", minDollars: 5, maxDollars: 95,
		nouns:     []string{"Face Cream", "Shampoo Bar", "Lip Balm", "Hand Cream", "Body Wash", "Facial Serum", "Bath Salts", "Hair Oil", "Sunscreen SPF 30", "Beard Oil"},
		materials: []string{"shea butter", "aloe vera", "argan oil", "oat extract", "vitamin E", "green tea extract"},
		uses:      []string{"sensitive skin", "dry winter skin", "a morning routine", "after sun", "the gym bag"},
		features: []string{
			"It is fragrance free and dermatologically tested.",
			"A little goes a long way; one bottle lasts about three months.",
			"The packaging is recyclable and the refill pouch uses less plastic.",
			"It absorbs quickly and leaves no greasy film.",
			"Never tested on animals.",
			"Suitable for daily use, morning and evening.",
			"Free from parabens and sulphates.",
		},
	},
	{
		slug: "sports", code: "SPT", minDollars: 10, maxDollars: 520,
		nouns:     []string{"Yoga Mat", "Dumbbell Pair", "Jump Rope", "Resistance Bands", "Water Bottle", "Foam Roller", "Cycling Gloves", "Tennis Racket", "Gym Bag", "Kettlebell"},
		materials: []string{"natural rubber", "cork", "stainless steel", "neoprene", "recycled polyester", "cast iron"},
		uses:      []string{"home workouts", "the gym", "recovery days", "early morning runs", "weekend matches"},
		features: []string{
			"The grip stays secure even when hands are sweaty.",
			"It wipes clean in seconds after a session.",
			"Its weight and balance suit beginners and regulars alike.",
			"A carry strap makes it easy to take to class.",
			"It has been drop tested hundreds of times.",
			"Markings are printed, not stickered, so they never peel.",
			"It comes with a short guide to a first week of workouts.",
		},
	},
}

var openings = []string{
	"The %s %s is made for %s.",
	"Meet the %s %s, our pick for %s.",
	"Designed in-house, the %s %s earns its place in %s.",
	"The %s %s keeps things simple for %s.",
}

var materialLines = []string{
	"It is made from %s chosen to last for years.",
	"We make it from %s, tested for everyday use.",
	"Its %s construction feels solid without adding bulk.",
}

var careLines = []string{
	"Ships within two business days.",
	"Free returns within thirty days.",
	"Ships in plastic-free packaging.",
	"Gift wrapping is available at checkout.",
}
